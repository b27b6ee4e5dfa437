using TerDiT.Runtime.Import;
using TerDiT.Runtime.Model;
using TerDiT.Runtime.Ops;
using TerDiT.Runtime.Vae;
using TerDiT.Testing;
using Xunit;

namespace TerDiT.Runtime.Tests;

/// <summary>
/// The VAE decoder and its ops. The reference outputs come from diffusers' own <c>Encoder</c>/<c>Decoder</c>
/// (tests/fixtures/vae, described in docs/VAE.md): a reduced-width AutoencoderKL — channels (16, 32, 32, 32),
/// 2 layers a block, 8 groups, 8× downsampling — with random weights in diffusers' file layout.
/// </summary>
public sealed class VaeTests
{
    static readonly string FixtureDir = Repository.Fixture("vae");
    static readonly ParallelOptions Parallel2 = new() { MaxDegreeOfParallelism = 2 };


    static float[] Random(int n, int seed)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(r.NextDouble() * 2 - 1)).ToArray();
    }

    static float[] ToChannelsLast(float[] x, int c, int pixels)
    {
        var y = new float[x.Length];
        for (int ch = 0; ch < c; ch++)
            for (int p = 0; p < pixels; p++) y[p * c + ch] = x[ch * pixels + p];
        return y;
    }

    [Theory]
    [InlineData(1, 3, 5, 7, 1, false)]
    [InlineData(3, 4, 6, 5, 3, false)]
    [InlineData(3, 17, 4, 9, 3, false)]   // Cout past one 16-wide panel
    [InlineData(3, 8, 3, 4, 3, true)]     // nearest 2× upsampling folded in
    [InlineData(3, 2, 1, 1, 3, true)]
    [InlineData(1, 5, 2, 3, 1, true)]
    public void Conv2dMatchesReference(int kernel, int cout, int height, int width, int cin, bool upsample)
    {
        var x = Random(cin * height * width, 1);
        var w = Random(cout * cin * kernel * kernel, 2);
        var b = Random(cout, 3);
        int scale = upsample ? 2 : 1, outPixels = height * width * scale * scale;
        var expected = ToChannelsLast(ConvReference.Conv2d(x, cin, height, width, w, b, cout, kernel, scale), cout, outPixels);
        var y = new float[outPixels * cout];
        new Conv2d(w, b, cout, cin, kernel, Parallel2).Forward(ToChannelsLast(x, cin, height * width), height, width, y, upsample);
        // fp32 FMA sums of at most 9·Cin = 27 terms against a double reference: ~1e-7.
        Assert.InRange(Errors.MaxRelative(y, expected), 0, 1e-6);
    }

    [Theory]
    [InlineData(8, 2, 5)]
    [InlineData(32, 32, 3000)]  // more than one worker's 1024 pixels
    [InlineData(12, 3, 1)]
    public void GroupNormMatchesReference(int channels, int groups, int pixels)
    {
        var x = Random(channels * pixels, 4).Select(v => v * 3 + 50).ToArray(); // a large mean: the two-pass variance must keep precision
        var gamma = Random(channels, 5);
        var beta = Random(channels, 6);
        foreach (bool silu in new[] { false, true })
        {
            var expected = ToChannelsLast(ConvReference.GroupNorm(x, channels, pixels, groups, gamma, beta, 1e-6f, silu), channels, pixels);
            var y = new float[x.Length];
            new GroupNorm(gamma, beta, groups, 1e-6f, Parallel2).Forward(ToChannelsLast(x, channels, pixels), pixels, y, silu);
            // y = x·a + b (PyTorch's form too): with mean 50 and spread ~1, x·a and b are ~30 and cancel, so the
            // float rounding of ~30 (2e-6) is the error of an O(1) result; a wrong group or variance is off by O(1).
            Assert.InRange(Errors.MaxRelative(y, expected), 0, 1e-5);
        }
    }

    [Fact]
    public void DecoderMatchesDiffusers()
    {
        using var vae = VaeWeights.Open(Path.Combine(FixtureDir, "tiny-vae"));
        using var expected = SafetensorsFile.Open(Path.Combine(FixtureDir, "vae-expected.safetensors"));
        var decoder = new VaeDecoder(vae, new RuntimeOptions { Threads = 2 });
        // decode() takes model latents, z · scaling_factor; diffusers decoded z itself.
        var latents = expected.ReadFloats("z").Select(v => (float)(v * vae.Config.ScalingFactor)).ToArray();
        var images = decoder.Decode(latents, 2, 8, 8);
        // fp32 throughout, summation order differs from PyTorch's (im2col GEMM vs its convolution kernels)
        // over up to 9·32 = 288 terms per output, through ~25 layers with group norms: observed 2.6e-6.
        // A wrong tap order, group, upsampling phase or attention scale is off by far more than 1e-2.
        Assert.InRange(Errors.MaxRelative(images, expected.ReadFloats("decoded")), 0, 1e-4);
    }

    [Fact]
    public void IdentityIsTheWeightsFileHashAndOldAttentionNamesLoad()
    {
        using var vae = VaeWeights.Open(Path.Combine(FixtureDir, "tiny-vae"));
        Assert.Equal(VaeWeights.Sha256Of(Path.Combine(FixtureDir, "tiny-vae", VaeWeights.WeightsFileName)), vae.Sha256);
        Assert.Equal(64, vae.Sha256.Length);
        Assert.Equal(8, vae.Config.DownsampleFactor);
        Assert.True(vae.Contains("decoder.mid_block.attentions.0.to_out.0.weight"));
    }

    [Fact]
    public void ConfigRefusesOtherArchitectures()
    {
        const string ok = """{"_class_name":"AutoencoderKL","block_out_channels":[32,64],"down_block_types":["DownEncoderBlock2D","DownEncoderBlock2D"],"up_block_types":["UpDecoderBlock2D","UpDecoderBlock2D"],"norm_num_groups":32}""";
        Assert.Equal(2, VaeConfig.Parse(ok, "config.json").DownsampleFactor);
        Assert.Contains("AutoencoderTiny", Assert.Throws<ImportFormatException>(() => VaeConfig.Parse(ok.Replace("AutoencoderKL", "AutoencoderTiny"), "config.json")).Message);
        Assert.Contains("multiple of 32", Assert.Throws<ImportFormatException>(() => VaeConfig.Parse(ok.Replace("[32,64]", "[32,48]"), "config.json")).Message);
        Assert.Contains("gelu", Assert.Throws<ImportFormatException>(() => VaeConfig.Parse(ok.Replace("{", """{"act_fn":"gelu",""", StringComparison.Ordinal), "config.json")).Message);
        Assert.Contains("not valid JSON", Assert.Throws<ImportFormatException>(() => VaeConfig.Parse("{", "config.json")).Message);
        // Values of the wrong JSON kind or unreadable as text are refused, not thrown from System.Text.Json.
        Assert.Contains("'_class_name' is not a string", Assert.Throws<ImportFormatException>(() => VaeConfig.Parse(ok.Replace("\"AutoencoderKL\"", "5"), "config.json")).Message);
        Assert.Contains("'act_fn' is not valid text", Assert.Throws<ImportFormatException>(() => VaeConfig.Parse(ok.Replace("{", """{"act_fn":"\ud800",""", StringComparison.Ordinal), "config.json")).Message);
        Assert.Contains("'down_block_types' is not a string", Assert.Throws<ImportFormatException>(() => VaeConfig.Parse(ok.Replace("[\"DownEncoderBlock2D\",", "[1,"), "config.json")).Message);
    }
}
