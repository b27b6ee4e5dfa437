using System.Text.Json.Nodes;
using TerDiT.Testing;
using TerDiT.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace TerDiT.Tests;

public class TrainingCheckpointTests
{
    static string WriteSample(string dir)
    {
        var path = Path.Combine(dir, "checkpoints", "step-0000003.ckpt");
        using var a = arange(12, dtype: float32).view(3, 4);
        using var b = tensor(new long[] { -5, 7 });
        using var c = ones(2, dtype: bfloat16).mul(1.5);
        CheckpointFile.Write(path, new JsonObject { ["step"] = 3, ["note"] = "x" }, [("a", a), ("b", b), ("c", c)]);
        return path;
    }

    [Fact]
    public void RoundTripKeepsHeaderTensorsAndDtypes()
    {
        using var dir = new TempDirectory("ckpt");
        var path = WriteSample(dir);
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(path)!, "*.tmp"));
        var (header, tensors) = CheckpointFile.Read(path);
        Assert.Equal(3, (int)header["step"]!);
        Assert.Equal("x", (string)header["note"]!);
        Assert.Equal(["a", "b", "c"], tensors.Keys.Order());
        Assert.Equal(Enumerable.Range(0, 12).Select(i => (float)i), tensors["a"].data<float>().ToArray());
        Assert.Equal([3L, 4], tensors["a"].shape);
        Assert.Equal(new long[] { -5, 7 }, tensors["b"].data<long>().ToArray());
        Assert.Equal(ScalarType.BFloat16, tensors["c"].dtype);
        Assert.Equal(1.5f, tensors["c"][1].to(float32).item<float>());
        Assert.Equal(path, Checkpoint.Resolve(dir));
        foreach (var t in tensors.Values) t.Dispose();
    }

    [Fact]
    public void TruncatedCorruptOrForeignFilesAreRefused()
    {
        using var dir = new TempDirectory("ckpt");
        var path = WriteSample(dir);
        var bytes = File.ReadAllBytes(path);

        File.WriteAllBytes(path, bytes[..^7]);
        Assert.Contains("truncated or corrupt", Assert.Throws<InvalidDataException>(() => CheckpointFile.Read(path)).Message);
        File.WriteAllBytes(path, bytes[..30]);
        Assert.Contains("truncated", Assert.Throws<InvalidDataException>(() => CheckpointFile.Read(path)).Message);

        var flipped = (byte[])bytes.Clone();
        flipped[bytes.Length - 40] ^= 0x10; // inside the tensor data
        File.WriteAllBytes(path, flipped);
        Assert.Contains("checksum mismatch", Assert.Throws<InvalidDataException>(() => CheckpointFile.Read(path)).Message);

        File.WriteAllText(path, "definitely not a checkpoint, just text of some length........");
        Assert.Contains("not a TerDiT checkpoint", Assert.Throws<InvalidDataException>(() => CheckpointFile.Read(path)).Message);

        Assert.Throws<FileNotFoundException>(() => CheckpointFile.Read(Path.Combine(dir, "missing.ckpt")));
        var empty = Directory.CreateDirectory(Path.Combine(dir, "empty-run")).FullName;
        Assert.Contains("no checkpoint", Assert.Throws<FileNotFoundException>(() => Checkpoint.Resolve(empty)).Message);
    }
}
