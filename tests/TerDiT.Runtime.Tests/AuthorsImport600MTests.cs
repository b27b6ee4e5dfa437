using System.Diagnostics;
using TerDiT.Runtime.Config;
using TerDiT.Runtime.Format;
using TerDiT.Runtime.Import;
using TerDiT.Runtime.Model;
using TerDiT.Testing;
using Xunit;
using Xunit.Abstractions;

namespace TerDiT.Runtime.Tests;

/// <summary>
/// Runs only where <c>TERDIT_AUTHORS_600M</c> names a folder holding a TerDiT-600M checkpoint made by the
/// authors' code (their <c>DiT_Llama_600M_patch2</c>, random packed weights, ~175 MB, not committed) and
/// their forward's output on one input (<c>expected.safetensors</c>); docs/IMPORT.md says how to make one.
/// Otherwise it is reported as skipped with that reason.
/// </summary>
public sealed class AuthorsImport600MTests(ITestOutputHelper output) : IDisposable
{
    const string Variable = "TERDIT_AUTHORS_600M";
    readonly TempDirectory _temp = new("terdit-import-600m");

    public void Dispose() => _temp.Dispose();

    sealed class NeedsCheckpointFact : FactAttribute
    {
        public NeedsCheckpointFact()
        {
            if (Environment.GetEnvironmentVariable(Variable) is not { Length: > 0 } dir || !Directory.Exists(dir))
                Skip = $"{Variable} does not name a 600M-config checkpoint made by the authors' code (docs/IMPORT.md)";
        }
    }

    [NeedsCheckpointFact]
    public void SixHundredMillionParameterCheckpointImportsAndMatchesTheirForward()
    {
        string dir = Environment.GetEnvironmentVariable(Variable)!, model = Path.Combine(_temp.Path, "600m.tdit");
        var clock = Stopwatch.StartNew();
        var sizes = AuthorsCheckpoint.Import(dir, model, new AuthorsImportOptions());
        output.WriteLine($"import: {clock.Elapsed.TotalSeconds:F1} s, {sizes.FileBytes} bytes");

        using var expected = SafetensorsFile.Open(Path.Combine(dir, "expected.safetensors"));
        using var file = TditFile.Open(model);
        Assert.Equal(Presets.Get("TerDiT-600M") with { QkNorm = true }, file.Config);
        Assert.Equal(ParameterSchema.TernaryParameterCount(file.Config) / 4, sizes.PackedTernaryBytes);
        var runtime = new RuntimeModel(new TditWeightSource(file), new RuntimeOptions());
        var y = new float[runtime.OutputLength];
        clock.Restart();
        runtime.Forward(expected.ReadFloats("x"), [(int)expected.ReadIntegers("t")[0]], [(int)expected.ReadIntegers("labels")[0]], y);
        output.WriteLine($"runtime forward (exact): {clock.Elapsed.TotalSeconds:F1} s");
        var reference = expected.ReadFloats("ternary_out");
        double err = 0, scale = 0;
        for (int i = 0; i < y.Length; i++) (err, scale) = (Math.Max(err, Math.Abs(y[i] - reference[i])), Math.Max(scale, Math.Abs(reference[i])));
        output.WriteLine($"max |ours − theirs| / max |theirs| = {err / scale:E2}");
        // fp32 through 16 blocks of width 1536 (dot products of up to 4096 terms, summed in another order
        // than PyTorch's): ~1e-6; a wrong bit field, label row or name map gives O(1).
        Assert.InRange(err / scale, 0, 1e-5);
    }
}
