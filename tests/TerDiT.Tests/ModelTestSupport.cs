using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace TerDiT.Tests;

/// <summary>Tensor comparisons for the model and quantization tests.</summary>
static class TensorAssert
{
    /// <summary>|actual − expected| ≤ atol + rtol·|expected| everywhere; the message gives the worst element.</summary>
    public static void Close(Tensor expected, Tensor actual, double rtol = 1e-5, double atol = 1e-6, string what = "tensor")
    {
        Assert.Equal(expected.shape, actual.shape);
        using var e = expected.detach().to(ScalarType.Float64, CPU);
        using var a = actual.detach().to(ScalarType.Float64, CPU);
        using var excess = (a - e).abs() - (e.abs() * rtol + atol);
        double worst = excess.max().item<double>();
        double maxDiff = (a - e).abs().max().item<double>();
        Assert.True(worst <= 0, $"{what}: max |diff| = {maxDiff:G4} exceeds atol {atol:G3} + rtol {rtol:G3}·|expected|");
    }

    /// <summary>Bitwise equal values (after converting expected to actual's dtype).</summary>
    public static void Equal(Tensor expected, Tensor actual, string what = "tensor") => Close(expected, actual, 0, 0, what);
}
