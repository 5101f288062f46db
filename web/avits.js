// The search nodes' result on the canvas: a one-line summary, the winning frames as a strip, an
// audio player for the winner's sound and a table of every candidate (score, rewards, recipe,
// file). The node's own image area keeps the live preview, which ends on the winner (the
// frontend keeps a node's last preview over its outputs). The winner's mp4 is a saved output,
// so it is in the queue history and the Assets panel.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const view = (f) =>
  api.apiURL(`/view?filename=${encodeURIComponent(f.filename)}&type=${encodeURIComponent(f.type)}` +
             `&subfolder=${encodeURIComponent(f.subfolder ?? "")}`);

const RESULT_HEIGHT = 190; // summary (two lines), strip (64 px), player, the table's heading

const fmt = (x) => (typeof x === "number" ? Number(x.toPrecision(3)).toString() : x ?? "");

function table(rows) {
  const details = document.createElement("details");
  const caption = document.createElement("summary");
  caption.textContent = `${rows.length} candidates`;
  details.append(caption);
  const t = document.createElement("table");
  t.className = "avits-candidates";
  t.style.cssText = "border-collapse:collapse;font-size:11px;width:100%";
  const names = [...new Set(rows.flatMap((r) => Object.keys(r.rewards ?? {})))];
  const head = ["#", "gen", "score", ...names, "recipe", "file"];
  t.insertRow().append(...head.map((h) => Object.assign(document.createElement("th"), { textContent: h })));
  for (const r of [...rows].sort((a, b) => (b.score ?? -Infinity) - (a.score ?? -Infinity))) {
    const cells = [r.id, r.generation, r.pruned_at != null ? `pruned at ${r.pruned_at}` : fmt(r.score),
                   ...names.map((n) => fmt(r.rewards?.[n])), r.recipe, (r.file ?? "").split("/").pop()];
    const row = t.insertRow();
    for (const c of cells) row.insertCell().textContent = c;
  }
  details.append(t);
  return details;
}

function show(node, output) {
  let widget = node.widgets?.find((w) => w.name === "avits_result");
  if (!widget) {
    const box = document.createElement("div");
    box.className = "avits-result";
    box.style.cssText = "display:flex;flex-direction:column;gap:4px;font:12px sans-serif;" +
                        "color:var(--input-text);overflow:auto";
    widget = node.addDOMWidget("avits_result", "avits_result", box, {
      serialize: false, getMinHeight: () => RESULT_HEIGHT });
  }
  const summary = Object.assign(document.createElement("div"), {
    className: "avits-summary", textContent: output.avits_summary[0] });
  const parts = [summary];
  if (output.images?.length) {
    const strip = Object.assign(document.createElement("img"), {
      className: "avits-strip", src: view(output.images[0]), alt: "the winning frames" });
    strip.style.cssText = "width:100%;height:64px;object-fit:contain;image-rendering:pixelated";
    parts.push(strip);
  }
  if (output.audio?.length) {
    const audio = Object.assign(document.createElement("audio"), {
      className: "avits-audio", controls: true, src: view(output.audio[0]) });
    audio.style.width = "100%";
    parts.push(audio);
  }
  if (output.avits_candidates?.length) parts.push(table(JSON.parse(output.avits_candidates[0])));
  widget.element.replaceChildren(...parts);
  // grow the node to hold the result (never shrink what the user sized); the table scrolls
  const want = node.computeSize();
  node.setSize([Math.max(node.size[0], want[0]), Math.max(node.size[1], want[1])]);
  node.setDirtyCanvas(true, true);
}

app.registerExtension({
  name: "AVITS.SearchResult",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!nodeData.category?.startsWith("AVITS/search")) return;
    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (output) {
      onExecuted?.apply(this, arguments);
      if (output?.avits_summary) show(this, output);
    };
  },
});
