using static TorchSharp.torch;

namespace TerDiT.Diffusion;

/// <summary>
/// The model as the diffusion sees it: <c>x</c> (N, C, H, W) noisy input, <c>t</c> (N) int64 ORIGINAL
/// timestep indices (0..999 for DiT, also under respacing), <c>y</c> (N) int64 labels (null class allowed).
/// Returns (N, C, H, W) epsilon, or (N, 2C, H, W) with learned sigma: channels [0, C) epsilon,
/// [C, 2C) the variance interpolation values v in [−1, 1].
/// </summary>
public delegate Tensor DenoiserFn(Tensor x, Tensor t, Tensor y);
