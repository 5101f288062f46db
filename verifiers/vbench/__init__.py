"""VBench's quality dimensions as verifiers, each on the user's copy of the weights VBench uses
(models/vbench/), computed as VBench computes them."""
