using System.IO.Compression;
using System.Text;
using TerDiT.Runtime.Import;
using Xunit;

namespace TerDiT.Runtime.Tests;

/// <summary>
/// The checkpoint reader against hostile input: pickles that would run code under Python's unpickler,
/// sizes meant to exhaust memory, and truncated or inconsistent files. Each must be refused with an
/// <see cref="ImportFormatException"/> naming the file, before anything is executed or allocated.
/// </summary>
public sealed class PickleSafetyTests
{
    /// <summary>Pickle bytes from pieces: strings as ASCII, byte arrays as is.</summary>
    static byte[] P(params object[] parts)
    {
        var bytes = new List<byte>();
        foreach (var p in parts) bytes.AddRange(p is string s ? Encoding.ASCII.GetBytes(s) : (byte[])p);
        return bytes.ToArray();
    }

    static byte[] B(params byte[] bytes) => bytes;

    static byte[] Le32(int v) => BitConverter.GetBytes(v);

    static ImportFormatException Refused(byte[] pickle) =>
        Assert.Throws<ImportFormatException>(() => SafeUnpickler.Load(pickle, "evil.pth", (_, _, _) => throw new InvalidOperationException("no storages here")));

    [Fact]
    public void PosixSystemGlobalIsRefused()
    {
        // What Python's pickle.dumps writes for an object whose __reduce__ returns (os.system, ("echo pwned",)), protocol 2.
        var pickle = P(B(0x80, 2), "cposix\nsystem\nq", B(0), "X", Le32(10), "echo pwnedq", B(1, 0x85), "q", B(2), "Rq", B(3), ".");
        var e = Refused(pickle);
        Assert.Contains("evil.pth", e.Message);
        Assert.Contains("'posix.system' is refused", e.Message);
    }

    [Theory]
    [InlineData("builtins", "eval")]
    [InlineData("builtins", "getattr")]
    [InlineData("torch", "load")]
    [InlineData("torch._utils", "_rebuild_parameter")]
    [InlineData("subprocess", "Popen")]
    public void StackGlobalOutsideTheWhitelistIsRefused(string module, string name)
    {
        // Protocol 4 names globals with STACK_GLOBAL from two strings on the stack.
        var pickle = P(B(0x80, 4, 0x8c, (byte)module.Length), module, B(0x8c, (byte)name.Length), name, B(0x93), ")R.");
        Assert.Contains($"'{module}.{name}' is refused", Refused(pickle).Message);
    }

    [Fact]
    public void WhitelistedGlobalsCannotBeCalledOtherwise()
    {
        // OrderedDict([...]) with arguments, and argparse.Namespace through REDUCE, are not what torch.save writes.
        Assert.Contains("refused", Refused(P(B(0x80, 2), "ccollections\nOrderedDict\n]", B(0x85), "R.")).Message);
        Assert.Contains("refused", Refused(P(B(0x80, 2), "cargparse\nNamespace\n)R.")).Message);
        // BUILD that would set attributes on a list, and a persistent id that is not a storage tuple.
        Assert.Contains("refused", Refused(P(B(0x80, 2), "]}b.")).Message);
        Assert.Contains("persistent id", Refused(P(B(0x80, 2), "(X", Le32(3), "abctQ.")).Message);
    }

    [Theory]
    [InlineData((byte)'i')]  // INST: calls a class named inline
    [InlineData((byte)'o')]  // OBJ
    [InlineData((byte)'c')]  // GLOBAL without its newline-terminated names
    [InlineData(0x82)]       // EXT1: extension registry
    [InlineData((byte)'S')]  // STRING (protocol 0, text)
    [InlineData((byte)'P')]  // PERSID (protocol 0)
    public void OtherOpcodesAreRefused(byte opcode) => Refused([0x80, 2, opcode, (byte)'.']);

    [Fact]
    public void HugeLengthsAreRefusedBeforeAllocating()
    {
        // A 4-GB string, a 2^64-byte BINUNICODE8 and an integer of 200 bytes in a 20-byte pickle.
        Assert.Contains("remain", Refused(P(B(0x80, 2, (byte)'X', 0xF0, 0xFF, 0xFF, 0x7F), ".")).Message);
        Assert.Contains("exceeds", Refused(P(B(0x80, 4, 0x8d, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF), ".")).Message);
        Assert.Contains("64 bits", Refused(P(B(0x80, 2, 0x8a, 200), new byte[200], ".")).Message);
        Assert.Contains("cap", Assert.Throws<ImportFormatException>(() => SafeUnpickler.Load(new byte[SafeUnpickler.MaxPickleBytes + 1], "big.pth", null)).Message);
    }

    [Fact]
    public void TruncatedOrMalformedPicklesAreRefused()
    {
        Assert.Contains("without STOP", Refused(P(B(0x80, 2), "]")).Message);
        Assert.Contains("underflow", Refused(P(B(0x80, 2), "a.")).Message);
        Assert.Contains("never stored", Refused(P(B(0x80, 2), "h", B(7), ".")).Message);
        Assert.Contains("after STOP", Refused(P(B(0x80, 2), "N.N")).Message);
        Assert.Contains("protocol", Refused(P(B(0x80, 9), "N.")).Message);
    }

    [Fact]
    public void DeepNestingCostsNoStack()
    {
        // 100 000 nested empty lists appended into each other: an unpickler that recursed would overflow.
        var pickle = new List<byte> { 0x80, 2 };
        for (int i = 0; i < 100_000; i++) pickle.Add((byte)']');
        for (int i = 0; i < 99_999; i++) pickle.Add((byte)'a');
        pickle.Add((byte)'.');
        Assert.IsType<List<object?>>(SafeUnpickler.Load(pickle.ToArray(), "deep.pth", null));
    }

    /// <summary>A zip in torch.save's layout (stored members under one folder) holding the given members.</summary>
    static byte[] TorchZip(params (string Name, byte[] Data)[] members)
    {
        using var buffer = new MemoryStream();
        using (var zip = new ZipArchive(buffer, ZipArchiveMode.Create, leaveOpen: true))
            foreach (var (name, data) in members)
            {
                using var s = zip.CreateEntry("archive/" + name, CompressionLevel.NoCompression).Open();
                s.Write(data);
            }
        return buffer.ToArray();
    }

    /// <summary>A state dict {"w": tensor of <paramref name="shape"/> over storage "0" of <paramref name="numel"/> floats}.</summary>
    static byte[] StateDictPickle(long numel, params long[] shape)
    {
        static byte[] Int(long v) => [0x8a, 8, .. BitConverter.GetBytes(v)];
        var size = shape.SelectMany(Int).ToArray();
        var stride = shape.Select((_, i) => shape.Skip(i + 1).Aggregate(1L, (a, b) => a * b)).SelectMany(Int).ToArray();
        return P(B(0x80, 2), "ccollections\nOrderedDict\n)R(X", Le32(1), "w", "ctorch._utils\n_rebuild_tensor_v2\n(",
            "(X", Le32(7), "storagectorch\nFloatStorage\nX", Le32(1), "0X", Le32(3), "cpu", Int(numel), "tQ",
            Int(0), "(", size, "t(", stride, "t", B(0x89), "ccollections\nOrderedDict\n)R", "tR", "u.");
    }

    [Fact]
    public void ValidStateDictReads()
    {
        var bytes = TorchZip(("data.pkl", StateDictPickle(6, 2, 3)), ("data/0", new byte[24]), ("version", "3\n"u8.ToArray()));
        using var ckpt = TorchCheckpoint.Read(ByteSource.FromArray(bytes, "ok.pth"));
        var (name, t) = Assert.Single(ckpt.StateDict());
        Assert.Equal("w", name);
        Assert.Equal([2L, 3L], t.Shape);
        Assert.Equal(new float[6], ckpt.ReadFloats(name, t));
    }

    [Fact]
    public void TensorSizesAreCheckedAgainstTheirStorage()
    {
        // A view of 2^20 × 2^20 elements over 6 floats, one that overflows 64 bits, and a storage claiming more bytes than its member holds.
        static ImportFormatException Read(byte[] pickle, int storageBytes) => Assert.Throws<ImportFormatException>(() =>
            TorchCheckpoint.Read(ByteSource.FromArray(TorchZip(("data.pkl", pickle), ("data/0", new byte[storageBytes])), "evil.pth")));
        Assert.Contains("reaches element", Read(StateDictPickle(6, 1L << 20, 1L << 20), 24).Message);
        Assert.Contains("overflows", Read(StateDictPickle(6, 1L << 62, 1L << 62), 24).Message);
        Assert.Contains("member holds 24 bytes", Read(StateDictPickle(1L << 60, 2, 3), 24).Message);
    }

    [Fact]
    public void MaliciousPickleInsideACheckpointIsRefusedNamingTheFile()
    {
        var pickle = P(B(0x80, 2), "cposix\nsystem\nX", Le32(2), "id", B(0x85), "R.");
        var e = Assert.Throws<ImportFormatException>(() => TorchCheckpoint.Read(ByteSource.FromArray(TorchZip(("data.pkl", pickle)), "model.pth")));
        Assert.StartsWith("model.pth:", e.Message);
    }

    [Fact]
    public void TruncatedOrCorruptedZipIsRefused()
    {
        var bytes = TorchZip(("data.pkl", StateDictPickle(6, 2, 3)), ("data/0", new byte[24]));
        for (int cut = 0; cut < bytes.Length; cut += 7)
        {
            var e = Assert.Throws<ImportFormatException>(() => TorchCheckpoint.Read(ByteSource.FromArray(bytes[..cut], "cut.pth")));
            Assert.StartsWith("cut.pth:", e.Message);
        }
        // A flipped byte in the pickle fails its CRC-32 before it is unpickled.
        var flipped = (byte[])bytes.Clone();
        int at = Encoding.ASCII.GetString(bytes).IndexOf("OrderedDict", StringComparison.Ordinal);
        flipped[at] ^= 0x20;
        Assert.Contains("CRC-32", Assert.Throws<ImportFormatException>(() => TorchCheckpoint.Read(ByteSource.FromArray(flipped, "flip.pth"))).Message);
        // Not a zip at all.
        Assert.Contains("not a zip", Assert.Throws<ImportFormatException>(() => TorchCheckpoint.Read(ByteSource.FromArray(new byte[100], "zero.pth"))).Message);
    }
}
