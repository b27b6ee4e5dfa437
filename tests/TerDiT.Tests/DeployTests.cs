using TerDiT.Runtime;
using TerDiT.Runtime.Imaging;
using TerDiT.Runtime.Model;
using TerDiT.Runtime.Diffusion;
using TerDiT.Testing;
using Xunit;
using static TerDiT.Tests.PackFixtures;
using static TerDiT.Tests.Terdit;

namespace TerDiT.Tests;

/// <summary><c>terdit sample --model</c>: the packed runtime path of the CLI.</summary>
public class DeployTests : IDisposable
{
    readonly TempDirectory dir = new("deploy-tests");

    public void Dispose() => dir.Dispose();

    string Packed()
    {
        var ckpt = WriteCheckpoint(dir, Tiny);
        var packed = Path.Combine(dir, "m.tdit");
        var r = Run("pack", "--checkpoint", ckpt, "--out", packed);
        Assert.True(r.Code == 0, r.Err);
        return packed;
    }

    static string[] Sample(string model, string png, string mode, string threads, string sampler = "ddim") =>
        ["sample", "--model", model, "--classes", "0,3", "--per-class", "3", "--steps", "3", "--cfg", "1.5", "--seed", "5", "--out", png, "--mode", mode,
         "--threads", threads, "--sampler", sampler];

    [Fact]
    public void SampleFromAPackedModelIsDeterministicAndIsThePipelinesGrid()
    {
        var model = Packed();
        string a = Path.Combine(dir, "a.png"), b = Path.Combine(dir, "b.png"), a8 = Path.Combine(dir, "a8.png");
        var r = Run(Sample(model, a, "exact", "2"));
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains("runtime Exact", r.Out);
        Assert.Equal(0, Run(Sample(model, b, "exact", "1")).Code); // thread count does not change the images
        Assert.Equal(File.ReadAllBytes(a), File.ReadAllBytes(b));

        // The grid holds exactly the pipeline's pixels, class 0 in row 0 and class 3 in row 1.
        using var pipe = TerDiTPipeline.Load(model, new RuntimeOptions { Threads = 2 });
        void AssertGridIs(string png, SamplerKind sampler)
        {
            var pixels = PngGrid.ToPixels(pipe.Sample([0, 3], 3, 3, sampler, 1.5, 5));
            using var img = SixLabors.ImageSharp.Image.Load<SixLabors.ImageSharp.PixelFormats.L8>(png);
            Assert.Equal((3 * 34 + 2, 2 * 34 + 2), (img.Width, img.Height));
            for (int i = 0; i < 6; i++)
                for (int y = 0; y < 32; y += 7)
                    for (int x = 0; x < 32; x += 5)
                        Assert.Equal(pixels[i * 1024 + y * 32 + x], img[2 + i % 3 * 34 + x, 2 + i / 3 * 34 + y].PackedValue);
        }
        AssertGridIs(a, SamplerKind.Ddim);
        string dpm = Path.Combine(dir, "dpm.png");
        Assert.Equal(0, Run(Sample(model, dpm, "exact", "2", "dpm++2m")).Code);
        AssertGridIs(dpm, SamplerKind.DpmPlusPlus2M);

        Assert.Equal(0, Run(Sample(model, a8, "a8", "2")).Code);
        Assert.NotEqual(File.ReadAllBytes(a), File.ReadAllBytes(a8)); // int8 activations: close, not identical
    }

    [Fact]
    public void BadSampleInvocationsAreOneLineAndExitCode2()
    {
        var model = Packed();
        var png = Path.Combine(dir, "x.png");
        // Neither --model nor --checkpoint samples the shipped model (ShippedModelTests); both is an error.
        AssertUsageError(Run("sample", "--model", model, "--checkpoint", dir, "--out", png), "not both");
        AssertUsageError(Run("sample", "--checkpoint", dir, "--mode", "a8", "--out", png), "--model");
        AssertUsageError(Run("sample", "--model", model, "--mode", "int4", "--out", png), "int4");
        AssertUsageError(Run("sample", "--model", model, "--classes", "0,12", "--out", png), "12");
        AssertUsageError(Run("sample", "--model", Path.Combine(dir, "none.tdit"), "--out", png), "none.tdit");
        var notPacked = Path.Combine(dir, "notpacked.tdit");
        File.WriteAllBytes(notPacked, new byte[64]);
        AssertUsageError(Run("sample", "--model", notPacked, "--out", png), "notpacked.tdit");
        Assert.False(File.Exists(png));
    }
}
