using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using TerDiT.Runtime.Config;
using TerDiT.Runtime.Cpu;
using TerDiT.Runtime.Format;
using TerDiT.Runtime.Model;
using TerDiT.Runtime.Onnx;
using Xunit;

namespace TerDiT.Runtime.Tests;

/// <summary>
/// The exported ONNX graphs, run by ONNX Runtime, against the runtime's own forward on the same
/// packed file: fp32 against Exact, int8 against the distance A8 itself keeps from Exact.
/// </summary>
public sealed class OnnxExportTests : IDisposable
{
    readonly FormatTestFiles _files = new();

    public void Dispose() => _files.Dispose();

    public static TheoryData<string> Variants => new() { "small", "no-qknorm", "no-adalnnorm", "patch4-3ch", "odd" };

    static TerDiTConfig Variant(string name) => name switch
    {
        "small" => ModelTests.Small,
        "no-qknorm" => ModelTests.Small with { QkNorm = false },
        "no-adalnnorm" => ModelTests.Small with { AdaLnNorm = false },
        "patch4-3ch" => ModelTests.Small with { InChannels = 3, PatchSize = 4, InputSize = 12, NumHeads = 4, LearnSigma = false },
        "odd" => FormatTestFiles.Odd, // D = 42: K and N not multiples of 16, hd = 14
        _ => throw new ArgumentException(name),
    };

    /// <summary>A random model (<see cref="ModelTestWeights"/>) packed into a .tdit file in the kernels' layout, F32 full-precision tensors.</summary>
    string WriteModel(TerDiTConfig config, int seed)
    {
        var (_, dense, ternary) = ModelTestWeights.RandomWithTrits(config, seed);
        var meta = FormatTestFiles.Metadata(config, TernaryPacking.LayoutName);
        var decls = TditSchema.Declarations(config, meta.TernaryLayout, TditDType.F32).ToList();
        string path = _files.PathOf($"{config.Name}-{seed}.tdit");
        using var w = new TditWriter(path, meta, decls);
        foreach (var d in decls)
        {
            if (d.DType == TditDType.U8)
            {
                string prefix = d.Name[..^".weight".Length];
                var spec = ParameterSchema.Enumerate(config).First(p => p.Name == d.Name);
                w.Write(d.Name, TernaryPacking.Pack(ternary[prefix].Trits, (int)spec.Shape[0], (int)spec.Shape[1]));
            }
            else if (d.Name.EndsWith(".alpha")) w.Write(d.Name, [ternary[d.Name[..^".alpha".Length]].Alpha]);
            else w.Write(d.Name, dense[d.Name]);
        }
        w.Commit();
        return path;
    }

    /// <summary>The runtime's forward of x, t, y.</summary>
    static float[] Runtime(TditFile file, GemmMode mode, float[] x, int[] t, int[] y)
    {
        var model = new RuntimeModel(new TditWeightSource(file), new RuntimeOptions { Threads = 2, Mode = mode });
        var output = new float[t.Length * model.OutputLength];
        model.Forward(x, t, y, output);
        return output;
    }

    /// <summary>ONNX Runtime's output of the graph at <paramref name="path"/> for x (N, C, H, W), t, y.</summary>
    internal static float[] RunOnnx(string path, TerDiTConfig c, float[] x, int[] t, int[] y)
    {
        using var options = new SessionOptions { IntraOpNumThreads = 2, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
        using var session = new InferenceSession(path, options);
        int n = t.Length;
        var inputs = new[]
        {
            NamedOnnxValue.CreateFromTensor("x", new DenseTensor<float>(x, [n, c.InChannels, c.InputSize, c.InputSize])),
            NamedOnnxValue.CreateFromTensor("t", new DenseTensor<long>(t.Select(v => (long)v).ToArray(), [n])),
            NamedOnnxValue.CreateFromTensor("y", new DenseTensor<long>(y.Select(v => (long)v).ToArray(), [n])),
        };
        using var results = session.Run(inputs);
        var output = results.Single();
        Assert.Equal("out", output.Name);
        var tensor = output.AsTensor<float>();
        Assert.Equal([n, c.OutChannels, c.InputSize, c.InputSize], tensor.Dimensions.ToArray());
        return tensor.ToArray();
    }

    static (float[] X, int[] T, int[] Y) Inputs(TerDiTConfig c, int n)
    {
        var x = TestData.Normal(n * c.InChannels * c.InputSize * c.InputSize, 5);
        int[] t = new[] { 0, 517, 999, 250 }[..n], y = new[] { 1, c.NullClass, c.NumClasses - 1, 0 }[..n];
        return (x, t, y);
    }

    [Theory, MemberData(nameof(Variants))]
    public void Float32GraphMatchesTheExactForward(string variant)
    {
        var config = Variant(variant);
        string tdit = WriteModel(config, 7), onnx = _files.PathOf("fp32.onnx");
        using var file = TditFile.Open(tdit);
        var result = OnnxExport.Export(file, onnx, OnnxPrecision.Float32);
        Assert.Null(result.DataPath);
        var (x, t, y) = Inputs(config, 3);
        float[] expected = Runtime(file, GemmMode.Exact, x, t, y), actual = RunOnnx(onnx, config, x, t, y);
        double err = TestData.RelativeError(actual, expected);
        Console.WriteLine($"ONNX fp32 {variant}: relative error {err:E3}");
        // Both are float32 throughout with different summation orders and exp/cos/sin implementations;
        // the runtime is within 3e-5 of a float64 reference (ModelTests), so 1e-4 leaves room for ONNX
        // Runtime's own rounding and nothing for a wrong op (a missing RoPE or norm moves it by > 1e-2).
        Assert.True(err < 1e-4, $"relative error {err:E3}");
    }

    [Theory, MemberData(nameof(Variants))]
    public void Int8GraphStaysWithinTheA8Bound(string variant)
    {
        var config = Variant(variant);
        string tdit = WriteModel(config, 7), onnx = _files.PathOf("int8.onnx");
        using var file = TditFile.Open(tdit);
        OnnxExport.Export(file, onnx, OnnxPrecision.Int8);
        var (x, t, y) = Inputs(config, 3);
        float[] exact = Runtime(file, GemmMode.Exact, x, t, y), a8 = Runtime(file, GemmMode.A8, x, t, y);
        float[] int8 = RunOnnx(onnx, config, x, t, y);
        double a8Error = TestData.RelativeError(a8, exact), int8Error = TestData.RelativeError(int8, exact);
        Console.WriteLine($"ONNX int8 {variant}: relative error {int8Error:E3} against Exact; A8 {a8Error:E3}");
        // The same per-token int8 codes (up to a division against our multiplication by 127/absmax, which
        // moves rare codes by one) times the same trits; A8 adds int16 attention, so the int8 graph must be
        // no further from Exact than A8 is (with 25 % for the codes that round differently).
        Assert.True(int8Error < 1.25 * a8Error, $"int8 graph {int8Error:E3} against Exact, A8 {a8Error:E3}");
        Assert.True(int8Error > 1e-5, "the int8 graph should not be exact"); // the quantization is in the graph
    }

    [Fact]
    public void LargeModelsKeepTheirWeightsInAnExternalDataFile()
    {
        var config = ModelTests.Small;
        string tdit = WriteModel(config, 3), onnx = _files.PathOf("external.onnx");
        using var file = TditFile.Open(tdit);
        var result = OnnxExport.Export(file, onnx, OnnxPrecision.Float32, externalDataAbove: 0);
        Assert.Equal(onnx + ".data", result.DataPath);
        Assert.True(result.DataBytes > 4L * ParameterSchema.TernaryParameterCount(config)); // the weights are there…
        Assert.True(result.ModelBytes < 64 * 1024);                                        // …not in the graph
        var (x, t, y) = Inputs(config, 2);
        double err = TestData.RelativeError(RunOnnx(onnx, config, x, t, y), Runtime(file, GemmMode.Exact, x, t, y));
        Assert.True(err < 1e-4, $"relative error {err:E3}");
        Assert.Equal(["external.onnx", "external.onnx.data", Path.GetFileName(tdit)], Directory.GetFiles(_files.Directory).Select(f => Path.GetFileName(f)!).Order().ToArray()); // no temp files left
    }

    [Fact]
    public void FullPrecisionModelsExportAsFloat32Only()
    {
        var config = ModelTests.Small with { Ternary = false };
        string tdit = WriteModel(config, 5);
        using var file = TditFile.Open(tdit);
        var e = Assert.Throws<ArgumentException>(() => OnnxExport.Export(file, _files.PathOf("int8.onnx"), OnnxPrecision.Int8));
        Assert.Contains("full-precision", e.Message);
        Assert.False(File.Exists(_files.PathOf("int8.onnx")));
        OnnxExport.Export(file, _files.PathOf("fp32.onnx"), OnnxPrecision.Float32);
        var (x, t, y) = Inputs(config, 2);
        double err = TestData.RelativeError(RunOnnx(_files.PathOf("fp32.onnx"), config, x, t, y), Runtime(file, GemmMode.Exact, x, t, y));
        Assert.True(err < 1e-4, $"relative error {err:E3}");
    }
}
