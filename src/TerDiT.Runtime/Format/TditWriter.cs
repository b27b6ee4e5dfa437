using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Win32.SafeHandles;
using TerDiT.Runtime.Config;

namespace TerDiT.Runtime.Format;

/// <summary>
/// Writes a <c>.tdit</c> file atomically. The constructor checks the declarations against the
/// config's parameter schema, lays the file out (<see cref="TditLayout"/>) and writes the header to
/// a temp file next to the target; <see cref="Write(string, ReadOnlySpan{byte})"/> streams each
/// tensor's bytes straight to its place (any order, each exactly once, nothing buffered; packed ternary
/// bytes checked with their layout's <see cref="TernaryLayout.Validate"/>);
/// <see cref="Commit"/> hashes the data section (SHA-256, read back from the temp file), patches the
/// checksum into its fixed-width placeholder, flushes to disk and renames over the target.
/// Disposing without a successful commit deletes the temp file and leaves the target untouched.
/// </summary>
public sealed class TditWriter : IDisposable
{
    readonly string path, tempPath;
    readonly TditLayout layout;
    readonly Dictionary<string, TditTensorInfo> byName;
    readonly HashSet<string> written = [];
    readonly TernaryLayout? ternaryLayout;
    /// <summary>Logical (rows, cols) of each ternary weight, for <see cref="TernaryLayout.Validate"/>.</summary>
    readonly Dictionary<string, (int Rows, int Cols)> ternaryShapes = [];
    SafeFileHandle? file;
    bool committed;

    /// <param name="path">Target file; replaced atomically on <see cref="Commit"/>.</param>
    /// <param name="metadata">Model description; its config decides the required tensors.</param>
    /// <param name="tensors">Every tensor to be written (see <see cref="TditSchema.Declarations"/>).</param>
    /// <exception cref="TditFormatException">The declarations do not match the config's schema (ternary
    /// weights: the packed shape of the metadata's <see cref="TditMetadata.TernaryLayout"/>), or that layout is unknown.</exception>
    /// <exception cref="ArgumentException">Inconsistent metadata or declarations.</exception>
    public TditWriter(string path, TditMetadata metadata, IEnumerable<TditTensorDecl> tensors)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException(".tdit files are little-endian; this machine is not");
        this.path = Path.GetFullPath(path);
        var strings = metadata.ToStrings();
        var decls = tensors.ToList();
        var byDecl = new Dictionary<string, (TditDType, long[])>();
        foreach (var d in decls)
            if (!byDecl.TryAdd(d.Name, (d.DType, d.Shape))) throw new ArgumentException($"tensor '{d.Name}' declared twice");
        var kinds = TditSchema.Match(metadata.Config, metadata.TernaryLayout, byDecl,
            s => new TditFormatException($"{Path.GetFileName(path)}: {s}"));
        layout = TditLayout.Plan(strings, decls, kinds);
        if (metadata.TernaryLayout is not null)
        {
            ternaryLayout = TernaryLayouts.Get(metadata.TernaryLayout, s => new ArgumentException(s));
            foreach (var p in ParameterSchema.Enumerate(metadata.Config))
                if (p.Kind == ParameterKind.TernaryWeight) ternaryShapes[p.Name] = ((int)p.Shape[0], (int)p.Shape[1]);
        }
        byName = layout.Tensors.ToDictionary(t => t.Name);

        Directory.CreateDirectory(Path.GetDirectoryName(this.path)!);
        tempPath = Path.Combine(Path.GetDirectoryName(this.path)!, $".{Path.GetFileName(this.path)}.{Guid.NewGuid():N}.tmp");
        file = File.OpenHandle(tempPath, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, FileOptions.None, layout.FileLength);
        try { RandomAccess.Write(file, layout.Prefix, 0); }
        catch { Dispose(); throw; }
    }

    /// <summary>The planned layout (offsets, header size, file size).</summary>
    public TditLayout Layout => layout;

    /// <summary>
    /// Writes a tensor's raw bytes (little-endian; U8 packed bytes as given). The length must be exact;
    /// a ternary weight's bytes must pass its layout's validator.
    /// </summary>
    public void Write(string name, ReadOnlySpan<byte> data)
    {
        var t = Begin(name);
        if (data.Length != t.ByteLength)
            throw new ArgumentException($"tensor '{name}' ({t.DType.Name()} {TditSchema.Shape(t.Shape)}) takes {t.ByteLength} bytes, got {data.Length}");
        if (ternaryShapes.TryGetValue(name, out var s) && ternaryLayout!.Validate(data, s.Rows, s.Cols) is { } problem)
            throw new ArgumentException($"tensor '{name}' is not valid {ternaryLayout.Name} data: {problem}");
        RandomAccess.Write(file!, data, layout.DataStart + t.Begin);
        written.Add(name);
    }

    /// <summary>Writes an F32 tensor as is, or an F16 tensor converted (round to nearest even).</summary>
    public void Write(string name, ReadOnlySpan<float> data)
    {
        var t = Begin(name);
        CheckElements(t, data.Length);
        if (t.DType == TditDType.F32) { Write(name, MemoryMarshal.AsBytes(data)); return; }
        if (t.DType != TditDType.F16) throw new ArgumentException($"tensor '{name}' is {t.DType.Name()}; floats go to F32 or F16 tensors");
        WriteConverted<float, Half>(t, data, static (s, d) => TensorPrimitives.ConvertToHalf(s, d));
    }

    /// <summary>Writes an F16 tensor as is, or an F32 tensor widened.</summary>
    public void Write(string name, ReadOnlySpan<Half> data)
    {
        var t = Begin(name);
        CheckElements(t, data.Length);
        if (t.DType == TditDType.F16) { Write(name, MemoryMarshal.AsBytes(data)); return; }
        if (t.DType != TditDType.F32) throw new ArgumentException($"tensor '{name}' is {t.DType.Name()}; halves go to F32 or F16 tensors");
        WriteConverted<Half, float>(t, data, static (s, d) => TensorPrimitives.ConvertToSingle(s, d));
    }

    /// <summary>
    /// Checks every tensor was written, computes the checksum, flushes and atomically replaces the
    /// target. Returns the checksum value stored ("sha256:…").
    /// </summary>
    public string Commit()
    {
        ObjectDisposedException.ThrowIf(file is null, this);
        if (committed) throw new InvalidOperationException("already committed");
        var missing = layout.Tensors.Where(t => !written.Contains(t.Name)).Select(t => t.Name).ToList();
        if (missing.Count > 0)
            throw new InvalidOperationException($"{missing.Count} tensor(s) not written: {string.Join(", ", missing.Take(5))}{(missing.Count > 5 ? ", …" : "")}");

        string checksum = TditLayout.ChecksumPrefix + Convert.ToHexStringLower(HashData(file, layout.DataStart, layout.DataLength));
        RandomAccess.Write(file, Encoding.ASCII.GetBytes(checksum), layout.ChecksumOffset);
        RandomAccess.FlushToDisk(file);
        file.Dispose();
        file = null;
        File.Move(tempPath, path, overwrite: true);
        committed = true;
        return checksum;
    }

    /// <summary>Closes the temp file and, unless committed, deletes it.</summary>
    public void Dispose()
    {
        file?.Dispose();
        file = null;
        if (!committed) File.Delete(tempPath);
    }

    /// <summary>SHA-256 of <paramref name="length"/> bytes at <paramref name="offset"/> of an open file.</summary>
    static byte[] HashData(SafeFileHandle file, long offset, long length)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = ArrayPool<byte>.Shared.Rent(1 << 20);
        try
        {
            for (long done = 0; done < length;)
            {
                int n = RandomAccess.Read(file, buffer.AsSpan(0, (int)Math.Min(buffer.Length, length - done)), offset + done);
                if (n <= 0) throw new IOException("temp file shorter than its layout");
                hash.AppendData(buffer, 0, n);
                done += n;
            }
        }
        finally { ArrayPool<byte>.Shared.Return(buffer); }
        return hash.GetHashAndReset();
    }

    TditTensorInfo Begin(string name)
    {
        ObjectDisposedException.ThrowIf(file is null, this);
        if (!byName.TryGetValue(name, out var t)) throw new ArgumentException($"tensor '{name}' was not declared");
        if (written.Contains(name)) throw new InvalidOperationException($"tensor '{name}' written twice");
        return t;
    }

    static void CheckElements(TditTensorInfo t, int count)
    {
        if (count != t.Elements)
            throw new ArgumentException($"tensor '{t.Name}' ({TditSchema.Shape(t.Shape)}) has {t.Elements} elements, got {count}");
    }

    delegate void Convert<TFrom, TTo>(ReadOnlySpan<TFrom> source, Span<TTo> destination);

    /// <summary>Converts through a pooled 64K-element buffer and writes chunk by chunk.</summary>
    void WriteConverted<TFrom, TTo>(TditTensorInfo t, ReadOnlySpan<TFrom> data, Convert<TFrom, TTo> convert) where TTo : unmanaged
    {
        var buffer = ArrayPool<TTo>.Shared.Rent(1 << 16);
        try
        {
            long at = layout.DataStart + t.Begin;
            for (int i = 0; i < data.Length; i += buffer.Length)
            {
                int n = Math.Min(buffer.Length, data.Length - i);
                convert(data.Slice(i, n), buffer.AsSpan(0, n));
                var bytes = MemoryMarshal.AsBytes(buffer.AsSpan(0, n));
                RandomAccess.Write(file!, bytes, at);
                at += bytes.Length;
            }
        }
        finally { ArrayPool<TTo>.Shared.Return(buffer); }
        written.Add(t.Name);
    }
}
