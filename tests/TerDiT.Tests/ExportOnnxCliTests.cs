using Xunit;
using static TerDiT.Tests.PackFixtures;
using static TerDiT.Tests.Terdit;

namespace TerDiT.Tests;

/// <summary><c>terdit export-onnx</c>: the command around <c>OnnxExport</c> (whose graphs are checked against ONNX Runtime in the runtime's tests).</summary>
public class ExportOnnxCliTests : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("export-onnx-tests").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [Fact]
    public void ExportWritesTheGraphAndRefusesBadInput()
    {
        var packed = Path.Combine(dir, "m.tdit");
        Assert.Equal(0, Run("pack", "--checkpoint", WriteCheckpoint(dir, Tiny), "--out", packed).Code);
        string fp32 = Path.Combine(dir, "m.onnx"), int8 = Path.Combine(dir, "m8.onnx");
        var r = Run("export-onnx", "--model", packed, "--out", fp32);
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains("fp32, opset 17", r.Out);
        r = Run("export-onnx", "--model", packed, "--out", int8, "--int8");
        Assert.True(r.Code == 0, r.Err);
        // int8 trits take a quarter of the fp32 weights' bytes.
        Assert.InRange(new FileInfo(int8).Length, 0, new FileInfo(fp32).Length * 0.4);

        AssertUsageError(Run("export-onnx", "--model", Path.Combine(dir, "none.tdit"), "--out", fp32), "none.tdit");
        AssertUsageError(Run("export-onnx", "--model", packed), "--out");
        var notPacked = Path.Combine(dir, "notpacked.tdit");
        File.WriteAllBytes(notPacked, new byte[64]);
        AssertUsageError(Run("export-onnx", "--model", notPacked, "--out", Path.Combine(dir, "x.onnx")), "notpacked.tdit");
        Assert.False(File.Exists(Path.Combine(dir, "x.onnx")));
    }
}
