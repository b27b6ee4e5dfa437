using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using TerDiT.Data;
using TerDiT.Runtime.Format;
using TerDiT.Runtime.Model;
using TerDiT.Runtime.Vae;
using TerDiT.Training;
using TerDiT.Testing;
using Xunit;
using static TerDiT.Tests.Terdit;

namespace TerDiT.Tests;

/// <summary>
/// The latent path through the CLI: import of the authors' fixture checkpoint and sampling it through a
/// VAE; encoding an image folder, training on its latents, packing and sampling the result.
/// Fixtures: tests/fixtures/authors-terdit (docs/IMPORT.md) and tests/fixtures/vae (docs/VAE.md).
/// </summary>
public sealed class LatentPipelineTests : IDisposable
{
    static readonly string Authors = Repository.Fixture("authors-terdit", "ternary");
    static readonly string TinyVae = Repository.Fixture("vae", "tiny-vae");
    readonly TempDirectory dir = new("latent-tests");

    public void Dispose() => dir.Dispose();

    /// <summary>A copy of the tiny VAE whose weights file differs by one byte of header padding: same weights, other identity.</summary>
    string OtherVae()
    {
        var other = Path.Combine(dir, "other-vae");
        Directory.CreateDirectory(other);
        File.Copy(Path.Combine(TinyVae, "config.json"), Path.Combine(other, "config.json"));
        var bytes = File.ReadAllBytes(Path.Combine(TinyVae, VaeWeights.WeightsFileName));
        int headerEnd = 8 + (int)BitConverter.ToUInt64(bytes, 0);
        Assert.Equal((byte)' ', bytes[headerEnd - 1]); // the header is padded with spaces; a tab is also JSON whitespace
        bytes[headerEnd - 1] = (byte)'\t';
        File.WriteAllBytes(Path.Combine(other, VaeWeights.WeightsFileName), bytes);
        return other;
    }

    [Fact]
    public void ImportedAuthorsModelSamplesThroughTheVae()
    {
        var model = Path.Combine(dir, "authors.tdit");
        var r = Run("import", "--authors-checkpoint", Authors, "--ema", "--heads", "4", "--out", model);
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains("import: 59/59 tensors", r.Out);
        Assert.Contains("latent model: decode with VAE 'stabilityai/sd-vae-ft-ema'", Run("info", model).Out);

        var png = Path.Combine(dir, "grid.png");
        string[] sample = ["sample", "--model", model, "--classes", "1,975", "--per-class", "1", "--steps", "2", "--threads", "2", "--out", png];
        AssertUsageError(Run(sample), "generates latents of the VAE 'stabilityai/sd-vae-ft-ema'");
        r = Run([.. sample, "--vae", TinyVae, "--cfg-channels", "3"]);
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains("sampling: 2/2 steps", r.Out);
        Assert.Contains("decoding: 2/2 images", r.Out);
        using var image = Image.Load<Rgb24>(png); // 8×8 latents × 8 = 64² RGB cells, 1 row per class
        Assert.Equal((2 + 66, 2 + 2 * 66), (image.Width, image.Height));
        AssertUsageError(Run([.. sample, "--vae", TinyVae, "--cfg-channels", "5"]), "--cfg-channels must be in 1..4");
        AssertUsageError(Run("serve", "--model", model, "--port", "0"), "a latent model"); // the service decodes no latents
    }

    [Fact]
    public void PinnedVaeRefusesAnotherOne()
    {
        var model = Path.Combine(dir, "pinned.tdit");
        Assert.Equal(0, Run("import", "--authors-checkpoint", Authors, "--ema", "--heads", "4", "--vae", TinyVae, "--out", model).Code);
        var png = Path.Combine(dir, "g.png");
        string[] sample = ["sample", "--model", model, "--classes", "0", "--per-class", "1", "--steps", "1", "--threads", "2", "--out", png];
        AssertUsageError(Run([.. sample, "--vae", OtherVae()]), "is not the model's");
        Assert.Equal(0, Run([.. sample, "--vae", TinyVae]).Code);
        var pixelModel = Path.Combine(dir, "pixels.tdit");
        Assert.Equal(0, Run("pack", "--preset", "TerDiT-Tiny", "--random-init", "--out", pixelModel).Code);
        AssertUsageError(Run("sample", "--model", pixelModel, "--vae", TinyVae, "--out", png), "needs no VAE");
    }

    [Fact]
    public void EncodeTrainPackAndSampleOnLatents()
    {
        // Two classes of two 80×64 images (centre-cropped to 64² by encode).
        var images = Path.Combine(dir, "images");
        for (int c = 0; c < 2; c++)
        {
            Directory.CreateDirectory(Path.Combine(images, $"class{c}"));
            for (int i = 0; i < 2; i++)
            {
                using var img = new Image<Rgb24>(80, 64);
                for (int y = 0; y < 64; y++)
                    for (int x = 0; x < 80; x++) img[x, y] = new Rgb24((byte)(x * 3 + 40 * c), (byte)(y * 4), (byte)(60 * i));
                img.SaveAsPng(Path.Combine(images, $"class{c}", $"{i}.png"));
            }
        }
        var latents = Path.Combine(dir, "set.latents");
        var r = Run("encode", "--data", images, "--vae", TinyVae, "--image-size", "64", "--batch", "3", "--threads", "2", "--out", latents);
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains("encode: 4/4 images", r.Out);
        var set = LatentSet.Load(latents);
        Assert.Equal((4, 4, 8, 2), (set.Count, set.Channels, set.Height, set.ClassNames.Count));
        using (var vae = VaeWeights.Open(TinyVae)) Assert.Equal(vae.Sha256, set.Latent.VaeSha256);

        var run = Path.Combine(dir, "run");
        r = Run("train", "--preset", "TerDiT-Tiny", "--data", latents, "--steps", "2", "--batch", "2", "--threads", "2", "--out", run);
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains("on 4 latents", r.Out);
        using (var ckpt = Checkpoint.Load(Checkpoint.Resolve(run)))
        {
            Assert.Equal((4, 8), (ckpt.Config.InChannels, ckpt.Config.InputSize));
            Assert.Equal(set.Latent, ckpt.Data.Latent);
        }
        AssertUsageError(Run("sample", "--checkpoint", run, "--out", Path.Combine(dir, "x.png")), "is a latent model");

        var model = Path.Combine(dir, "latent.tdit");
        Assert.Equal(0, Run("pack", "--checkpoint", run, "--out", model).Code);
        using (var f = TditFile.Open(model))
        {
            Assert.Equal(set.Latent, f.Info.Latent);
            Assert.Equal(["class0", "class1"], f.Info.Classes.Take(2));
        }
        var png = Path.Combine(dir, "latent.png");
        r = Run("sample", "--model", model, "--vae", TinyVae, "--classes", "0,1", "--per-class", "2", "--steps", "2", "--threads", "2", "--out", png);
        Assert.True(r.Code == 0, r.Err);
        AssertUsageError(Run("sample", "--model", model, "--vae", OtherVae(), "--out", png), "is not the model's");
    }

    [Fact]
    public void LatentDrawsAreAFunctionOfTheSeed()
    {
        // mean 1, std 0.5 everywhere, scale 2: x = (1 + 0.5 ε)·2 has mean 2 and standard deviation 1.
        int n = 64, per = 4 * 8 * 8;
        var latent = new TditLatent { Vae = "v", ScalingFactor = 2 };
        var set = new LatentSet(Enumerable.Repeat(1f, n * per).ToArray(), Enumerable.Repeat(0.5f, n * per).ToArray(), new int[n], 4, 8, 64, ["a"], latent);
        int[] all = Enumerable.Range(0, n).ToArray();
        var (x1, _) = set.Gather(all, 7, null, TorchSharp.torch.ScalarType.Float32);
        var (x2, _) = set.Gather(all, 7, null, TorchSharp.torch.ScalarType.Float32);
        var (x3, _) = set.Gather(all, 8, null, TorchSharp.torch.ScalarType.Float32);
        Assert.True(x1.equal(x2).all().item<bool>());
        Assert.False(x1.equal(x3).all().item<bool>());
        // 16384 draws: the sample mean is within 4 standard errors (4/128) of 2, the deviation within 3 % of 1.
        Assert.InRange(x1.mean().item<float>(), 2 - 4.0 / 128, 2 + 4.0 / 128);
        Assert.InRange(x1.std().item<float>(), 0.97, 1.03);
    }
}
