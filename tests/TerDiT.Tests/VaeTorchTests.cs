using TerDiT.Runtime.Import;
using TerDiT.Runtime.Vae;
using TerDiT.Vae;
using TerDiT.Testing;
using Xunit;
using static TorchSharp.torch;

namespace TerDiT.Tests;

/// <summary>
/// The TorchSharp <see cref="AutoencoderKL"/> against diffusers' encoder and decoder outputs on the
/// reduced-width random VAE of tests/fixtures/vae (docs/VAE.md).
/// </summary>
public sealed class VaeTorchTests
{
    static readonly string FixtureDir = Repository.Fixture("vae");

    static float[] Values(Tensor t)
    {
        using var c = t.detach().cpu().contiguous();
        return c.data<float>().ToArray();
    }

    [Fact]
    public void EncoderAndDecoderMatchDiffusers()
    {
        using var weights = VaeWeights.Open(Path.Combine(FixtureDir, "tiny-vae"));
        using var expected = SafetensorsFile.Open(Path.Combine(FixtureDir, "vae-expected.safetensors"));
        using var vae = AutoencoderKL.Load(weights);
        using var _ = no_grad();
        using var image = tensor(expected.ReadFloats("image"), [1, 3, 64, 64]);
        var (mean, std) = vae.Encode(image);
        using (mean) using (std)
        {
            // The same float32 operations as PyTorch, summed in its kernels' order or libtorch's: rounding only
            // (the runtime decoder, in another order still, is within 2.6e-6); a wrong layer is off by O(1).
            Assert.Equal([1L, 4, 8, 8], mean.shape);
            Assert.InRange(Errors.MaxRelative(Values(mean), expected.ReadFloats("mean")), 0, 1e-4);
            Assert.InRange(Errors.MaxRelative(Values(std), expected.ReadFloats("std")), 0, 1e-4);
        }
        using var z = tensor(expected.ReadFloats("z"), [2, 4, 8, 8]);
        using var decoded = vae.Decode(z);
        Assert.Equal([2L, 3, 64, 64], decoded.shape);
        Assert.InRange(Errors.MaxRelative(Values(decoded), expected.ReadFloats("decoded")), 0, 1e-4);
    }
}
