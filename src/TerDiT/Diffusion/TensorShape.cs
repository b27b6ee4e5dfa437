using static TorchSharp.torch;

namespace TerDiT.Diffusion;

/// <summary>Shapes in error messages.</summary>
static class TensorShape
{
    /// <summary>"(N, C, H, W)" style text of a tensor's shape.</summary>
    public static string Format(Tensor t) => "(" + string.Join(", ", t.shape) + ")";
}
