using Microsoft.ML.OnnxRuntime;
using TerDiT.Runtime;
using TerDiT.Runtime.Cpu;
using TerDiT.Runtime.Model;

namespace TerDiT.Bench;

/// <summary>
/// One engine running one sampling step's forward: the model at batch 2·images (conditional and
/// unconditional halves of classifier-free guidance), inputs fixed. The sampler's own arithmetic
/// (well under 0.1 % of a step) is left out for every engine alike.
/// </summary>
interface IContender : IDisposable
{
    void Step();
}

static class Contenders
{
    public static readonly string[] Names = ["ort-fp32", "ort-int8", "ours-exact", "ours-a8"];

    /// <summary>The engine <paramref name="impl"/> on the model files of one preset, for <paramref name="images"/> images.</summary>
    public static IContender Create(string impl, string tdit, string onnxFp32, string onnxInt8, int images, int threads) => impl switch
    {
        "ort-fp32" => new OrtContender(onnxFp32, images, threads),
        "ort-int8" => new OrtContender(onnxInt8, images, threads),
        "ours-exact" => new OursContender(tdit, GemmMode.Exact, images, threads),
        "ours-a8" => new OursContender(tdit, GemmMode.A8, images, threads),
        _ => throw new ArgumentException($"unknown contender '{impl}' (known: {string.Join(", ", Names)})"),
    };

    /// <summary>
    /// Batch inputs for 2·images rows: x ~ N(0, 1) of <paramref name="imageFloats"/> floats a row, timesteps
    /// spread over [0, 1000), labels 0 (a label is one row of a table lookup: its value costs nothing).
    /// </summary>
    public static (float[] X, long[] T, long[] Y) Inputs(int imageFloats, int images)
    {
        int n = 2 * images;
        var rng = new Random(1);
        var x = new float[n * imageFloats];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
        var t = Enumerable.Range(0, n).Select(i => (long)(i % images * 997 % 1000)).ToArray();
        return (x, t, new long[n]);
    }
}

/// <summary>ONNX Runtime on an exported graph: default CPU provider, all graph optimizations, <c>threads</c> intra-op threads.</summary>
sealed class OrtContender : IContender
{
    readonly SessionOptions _options;
    readonly InferenceSession _session;
    readonly OrtValue[] _inputs;
    readonly OrtValue _output;
    readonly RunOptions _run = new();

    public OrtContender(string path, int images, int threads)
    {
        _options = new SessionOptions
        {
            IntraOpNumThreads = threads,
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        };
        _session = new InferenceSession(path, _options);
        var shape = _session.InputMetadata["x"].Dimensions; // (N, C, H, W), N symbolic
        int n = 2 * images;
        var (x, t, y) = Contenders.Inputs(shape[1] * shape[2] * shape[3], images);
        _inputs =
        [
            OrtValue.CreateTensorValueFromMemory(x, [n, shape[1], shape[2], shape[3]]),
            OrtValue.CreateTensorValueFromMemory(t, [n]),
            OrtValue.CreateTensorValueFromMemory(y, [n]),
        ];
        var outShape = _session.OutputMetadata["out"].Dimensions;
        _output = OrtValue.CreateTensorValueFromMemory(new float[n * outShape[1] * outShape[2] * outShape[3]], [n, outShape[1], outShape[2], outShape[3]]);
    }

    public void Step() => _session.Run(_run, ["x", "t", "y"], _inputs, ["out"], [_output]);

    public void Dispose()
    {
        foreach (var v in _inputs) v.Dispose();
        _output.Dispose();
        _run.Dispose();
        _session.Dispose();
        _options.Dispose();
    }
}

/// <summary>The runtime's <see cref="RuntimeModel"/> on the packed file (weights memory-mapped), Exact or A8.</summary>
sealed class OursContender : IContender
{
    readonly TerDiTPipeline _pipeline;
    readonly float[] _x, _output;
    readonly int[] _t, _y;

    public OursContender(string path, GemmMode mode, int images, int threads)
    {
        _pipeline = TerDiTPipeline.Load(path, new RuntimeOptions { Mode = mode, Threads = threads });
        var (x, t, y) = Contenders.Inputs(_pipeline.Model.InputLength, images);
        (_x, _t, _y) = (x, t.Select(v => (int)v).ToArray(), y.Select(v => (int)v).ToArray());
        _output = new float[2 * images * _pipeline.Model.OutputLength];
    }

    public void Step() => _pipeline.Model.Forward(_x, _t, _y, _output);

    public void Dispose() => _pipeline.Dispose();
}
