using System.Globalization;
using TerDiT.Model;
using TerDiT.Runtime;
using TerDiT.Runtime.Config;
using TerDiT.Runtime.Cpu;
using TerDiT.Runtime.Format;
using TerDiT.Runtime.Model;
using TerDiT.Testing;
using TerDiT.Training;
using Xunit;
using Xunit.Abstractions;
using static TerDiT.Tests.PackFixtures;
using static TerDiT.Tests.Terdit;
using static TorchSharp.torch;

namespace TerDiT.Tests;

/// <summary><c>terdit pack</c> → .tdit → the runtime forward against the TorchSharp model the checkpoint gives.</summary>
public class PackTests(ITestOutputHelper output) : IDisposable
{
    readonly TempDirectory dir = new("pack-tests");

    public void Dispose() => dir.Dispose();

    /// <summary>The runtime's and TorchSharp's outputs for the same inputs (3 images, a null label among them).</summary>
    static (float[] Runtime, float[] Torch) Forward(string packed, TerDiTModel model)
    {
        var c = model.Config;
        long[] t = [0, 421, 999], y = [2, c.NullClass, 7];
        using var x = randn([3, c.InChannels, c.InputSize, c.InputSize], generator: new Generator(5, CPU));
        float[] expected;
        using (NewDisposeScope())
        using (no_grad())
            expected = model.call(x, tensor(t), tensor(y)).data<float>().ToArray();
        using var pipe = TerDiTPipeline.Load(packed, new RuntimeOptions { Threads = 2 });
        var actual = new float[expected.Length];
        pipe.Model.Forward(x.data<float>().ToArray(), t.Select(v => (int)v).ToArray(), y.Select(v => (int)v).ToArray(), actual);
        return (actual, expected);
    }

    /// <summary>F32: the packed model is the checkpoint's EMA model exactly (trits and alphas are what the forward uses), up to summation order.</summary>
    [Fact]
    public void PackedEmaF32ForwardEqualsTorchSharp()
    {
        var ckpt = WriteCheckpoint(dir, Tiny);
        var packed = Path.Combine(dir, "ema.tdit");
        var r = Run("pack", "--checkpoint", dir, "--out", packed, "--fp-dtype", "f32");
        Assert.True(r.Code == 0, r.Err);

        using var file = TditFile.Open(packed);
        Assert.Equal(TernaryPacking.LayoutName, file.Info.TernaryLayout);
        Assert.Equal(TditWeights.Ema, file.Info.Weights);
        Assert.Equal("TerDiT-Tiny", file.Info.Preset);
        Assert.Equal("T-shirt/top", file.Info.Classes[0]);
        Assert.Contains("step 3", file.Info.Source);
        Assert.All(file.Tensors.Where(t => t.Kind == ParameterKind.Full), t => Assert.Equal(TditDType.F32, t.DType));

        using var loaded = Checkpoint.Load(ckpt);
        using var model = loaded.CreateModel(WeightsKind.Ema);
        var (runtime, torch) = Forward(packed, model);
        double err = RuntimeParityTests.RelativeError(runtime, torch);
        output.WriteLine($"F32 EMA: ‖runtime − torch‖/‖torch‖ = {err:E3}");
        Assert.True(err < 1e-4, $"relative error {err:E3}");

        // The raw weights are a different model: packing the EMA must not be a coincidence.
        using var raw = loaded.CreateModel(WeightsKind.Raw);
        Assert.True(RuntimeParityTests.RelativeError(runtime, Forward(packed, raw).Torch) > 0.1);
    }

    /// <summary>
    /// F16 (default): the file is the model with every full-precision parameter rounded to half, so against
    /// TorchSharp on those rounded parameters it must agree as tightly as F32 (1e-4). Against the unrounded
    /// model the difference is the rounding itself: relative 2⁻¹¹ at most per parameter (rms 2⁻¹¹/√3 ≈ 2.8e-4),
    /// carried through 4 blocks with normalisations (no large gain). Measured ≈ 5e-4 here; bound 5e-3,
    /// ten times that, which a wrong tensor (O(1)) or an F16 conversion bug (a bit pattern read as float) cannot meet.
    /// </summary>
    [Fact]
    public void PackedRawF16ForwardEqualsTorchSharpOnHalfRoundedParameters()
    {
        var ckpt = WriteCheckpoint(dir, Tiny);
        var packed = Path.Combine(dir, "raw.tdit");
        var r = Run("pack", "--checkpoint", ckpt, "--weights", "raw", "--out", packed);
        Assert.True(r.Code == 0, r.Err);
        using (var file = TditFile.Open(packed))
        {
            Assert.Equal(TditWeights.Raw, file.Info.Weights);
            Assert.All(file.Tensors.Where(t => t.Kind == ParameterKind.Full), t => Assert.Equal(TditDType.F16, t.DType));
        }

        using var loaded = Checkpoint.Load(ckpt);
        using var model = loaded.CreateModel(WeightsKind.Raw);
        var (runtime, unrounded) = Forward(packed, model);
        var full = ParameterSchema.Enumerate(Tiny).Where(p => p.Kind == ParameterKind.Full).Select(p => p.Name).ToHashSet();
        using (no_grad())
            foreach (var (name, p) in model.named_parameters())
                if (full.Contains(name)) p.copy_(p.to(ScalarType.Float16).to(ScalarType.Float32));
        var (_, rounded) = Forward(packed, model);
        double exact = RuntimeParityTests.RelativeError(runtime, rounded), f16 = RuntimeParityTests.RelativeError(runtime, unrounded);
        output.WriteLine($"F16 raw: vs half-rounded TorchSharp {exact:E3}, vs the checkpoint's fp32 model {f16:E3}");
        Assert.True(exact < 1e-4, $"relative error {exact:E3} against the half-rounded model");
        Assert.True(f16 < 5e-3, $"relative error {f16:E3} against the fp32 model");
    }

    /// <summary>A full-precision (Ternary = false) checkpoint packs without a layout and runs through the runtime's float linears.</summary>
    [Fact]
    public void PackedFullPrecisionModelEqualsTorchSharp()
    {
        var config = Tiny with { Ternary = false };
        var ckpt = WriteCheckpoint(dir, config);
        var packed = Path.Combine(dir, "fp.tdit");
        var r = Run("pack", "--checkpoint", ckpt, "--out", packed, "--fp-dtype", "f32");
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains("ternary layout: (none: full precision)", Run("info", packed).Out);
        using var loaded = Checkpoint.Load(ckpt);
        using var model = loaded.CreateModel(WeightsKind.Ema);
        var (runtime, torch) = Forward(packed, model);
        double err = RuntimeParityTests.RelativeError(runtime, torch);
        output.WriteLine($"full precision F32: {err:E3}");
        Assert.True(err < 1e-4, $"relative error {err:E3}");
    }

    [Fact]
    public void PackRefusesBadCheckpointsWithExitCode2()
    {
        var corrupt = Path.Combine(dir, "corrupt.ckpt");
        File.WriteAllBytes(corrupt, new byte[100]);
        var outPath = Path.Combine(dir, "x.tdit");
        AssertUsageError(Run("pack", "--checkpoint", corrupt, "--out", outPath), "not a TerDiT checkpoint");
        AssertUsageError(Run("pack", "--checkpoint", Path.Combine(dir, "missing"), "--out", outPath), "not found");

        var nanDir = Path.Combine(dir, "nan");
        var nan = WriteCheckpoint(nanDir, Tiny, (name, t) => name == "final_layer.linear.bias" ? full_like(t, double.NaN) : t);
        AssertUsageError(Run("pack", "--checkpoint", nan, "--out", outPath), "final_layer.linear.bias");

        var shapeDir = Path.Combine(dir, "shape");
        var misshapen = WriteCheckpoint(shapeDir, Tiny, (name, t) => name == "blocks.1.attention.wq.weight" ? t.narrow(0, 0, 64) : t);
        AssertUsageError(Run("pack", "--checkpoint", misshapen, "--out", outPath), "blocks.1.attention.wq.weight");

        AssertUsageError(Run("pack", "--preset", "TerDiT-Tiny", "--out", outPath), "--random-init");
        AssertUsageError(Run("pack", "--checkpoint", nan, "--preset", "TerDiT-Tiny", "--out", outPath), "--preset");
        Assert.False(File.Exists(outPath));
        Assert.Empty(Directory.GetFiles(dir, "*.tmp")); // no temp file left behind by a refused pack
    }

    /// <summary>
    /// The runtime reads only the layouts of the table: a file naming any other is refused with the name in
    /// the message. (The writer refuses such a name too, so the file is a packed model whose metadata entry
    /// is rewritten; the data section, and so the checksum, is unchanged.)
    /// </summary>
    [Fact]
    public void RuntimeRefusesAnUnknownLayoutName()
    {
        var packed = Path.Combine(dir, "tiny.tdit");
        Assert.Equal(0, Run("pack", "--preset", "TerDiT-Tiny", "--random-init", "--out", packed).Code);
        var bytes = File.ReadAllBytes(packed);
        int n = (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        var header = System.Text.Json.Nodes.JsonNode.Parse(bytes.AsSpan(8, n))!;
        header["__metadata__"]!["ternary_layout"] = "other-2bit";
        var json = System.Text.Encoding.UTF8.GetBytes(header.ToJsonString());
        int padded = (json.Length + 7) / 8 * 8;
        var path = Path.Combine(dir, "other.tdit");
        File.WriteAllBytes(path, [.. BitConverter.GetBytes((ulong)padded), .. json, .. Enumerable.Repeat((byte)' ', padded - json.Length), .. bytes.AsSpan(8 + n)]);
        var e = Assert.Throws<TditFormatException>(() => TerDiTPipeline.Load(path));
        Assert.Contains("ternary_layout 'other-2bit' is not supported", e.Message);
        AssertUsageError(Run("info", path), "other-2bit");
    }

    [Fact]
    public void InfoPrintsSizesAndTheRatioToFp32()
    {
        var path = Path.Combine(dir, "tiny.tdit");
        var pack = Run("pack", "--preset", "TerDiT-Tiny", "--random-init", "--out", path);
        Assert.True(pack.Code == 0, pack.Err);
        var r = Run("info", path);
        Assert.True(r.Code == 0, r.Err);
        long Value(string key) => long.Parse(r.Out.Split('\n').Single(l => l.StartsWith(key + ": ")).Split(' ')[^1], CultureInfo.InvariantCulture);
        long fileBytes = new FileInfo(path).Length, fp32 = 4 * ParameterSchema.ParameterCount(Tiny);
        Assert.Equal(fileBytes, Value("file bytes"));
        Assert.Equal(fp32, Value("fp32 weights bytes"));
        Assert.Equal(Value("header bytes") + Value("packed ternary bytes") + Value("ternary scale bytes") + Value("full-precision bytes"), fileBytes);
        // Tiny: 1,441,792 ternary weights at 2 bits, everything else F16.
        Assert.Equal(ParameterSchema.TernaryParameterCount(Tiny) / 4, Value("packed ternary bytes"));
        Assert.Contains($"ratio: {((double)fp32 / fileBytes).ToString("F2", CultureInfo.InvariantCulture)}× smaller than the fp32 weights", r.Out);
        Assert.Contains("weights: random", r.Out);
        Assert.Contains("ternary layout: terdit-2bit-128", r.Out);
        Assert.Contains("parameters: 1541184", r.Out);
        Assert.Equal(0, Run("info", "--preset", "TerDiT-Tiny").Code);
        AssertUsageError(Run("info", path, "--preset", "TerDiT-Tiny"), "not both");
    }
}
