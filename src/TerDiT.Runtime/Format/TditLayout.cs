using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using TerDiT.Runtime.Config;

namespace TerDiT.Runtime.Format;

/// <summary>A tensor of a <c>.tdit</c> file and where its bytes are.</summary>
/// <param name="Begin">Start of its bytes relative to the data section (safetensors <c>data_offsets[0]</c>).</param>
/// <param name="End">One past its last byte, relative to the data section (<c>data_offsets[1]</c>).</param>
public sealed record TditTensorInfo(string Name, TditDType DType, long[] Shape, ParameterKind Kind, long Begin, long End)
{
    public long ByteLength => End - Begin;
    public long Elements => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>
/// Where everything goes in a file, computed from the declarations alone (no data):
/// <list type="bullet">
/// <item>8-byte little-endian header length N, then N bytes of UTF-8 JSON padded with spaces so the
/// data section starts at a multiple of <see cref="Alignment"/> (64) bytes in the file.</item>
/// <item>JSON: <c>__metadata__</c> first with <c>checksum</c> as its first key (a fixed-width
/// placeholder the writer patches once the data is hashed), then the tensors in file order.</item>
/// <item>Data order: tensors whose byte size is a multiple of 64 first, in declaration order — each
/// starts 64-byte aligned in the file; then the rest (in practice the 4-byte alphas) grouped F32, F16,
/// U8, so every tensor is still aligned to its element size. No gaps: safetensors requires the
/// offsets to tile the data section exactly.</item>
/// </list>
/// </summary>
public sealed class TditLayout
{
    /// <summary>Alignment of the data section and of every tensor whose size is a multiple of it.</summary>
    public const int Alignment = 64;

    /// <summary>Checksum value "sha256:" + 64 lower-case hex digits of SHA-256 over the data section.</summary>
    public const string ChecksumPrefix = "sha256:";
    public static readonly int ChecksumLength = ChecksumPrefix.Length + 64;

    /// <summary>File bytes 0 .. <see cref="DataStart"/>: length prefix, JSON, padding (checksum placeholder zeros).</summary>
    public byte[] Prefix { get; }
    /// <summary>File offset of the checksum value's first character.</summary>
    public int ChecksumOffset { get; }
    public long DataStart => Prefix.Length;
    public long DataLength { get; }
    public long FileLength => DataStart + DataLength;
    /// <summary>Tensors in file order.</summary>
    public IReadOnlyList<TditTensorInfo> Tensors { get; }

    TditLayout(byte[] prefix, int checksumOffset, long dataLength, IReadOnlyList<TditTensorInfo> tensors) =>
        (Prefix, ChecksumOffset, DataLength, Tensors) = (prefix, checksumOffset, dataLength, tensors);

    /// <summary>
    /// Lays out <paramref name="tensors"/> with <paramref name="metadata"/> (which must not hold
    /// <c>checksum</c>). <paramref name="kinds"/> gives each tensor's parameter kind.
    /// Throws <see cref="ArgumentException"/> for duplicate or reserved names and negative shapes.
    /// </summary>
    internal static TditLayout Plan(IReadOnlyDictionary<string, string> metadata, IEnumerable<TditTensorDecl> tensors,
        IReadOnlyDictionary<string, ParameterKind> kinds)
    {
        if (metadata.ContainsKey(TditKeys.Checksum)) throw new ArgumentException("metadata must not contain 'checksum': the writer computes it");
        var decls = tensors.ToList();
        var names = new HashSet<string>();
        foreach (var t in decls)
        {
            if (string.IsNullOrEmpty(t.Name) || t.Name == "__metadata__") throw new ArgumentException($"invalid tensor name '{t.Name}'");
            if (!names.Add(t.Name)) throw new ArgumentException($"tensor '{t.Name}' declared twice");
            if (t.Shape.Any(d => d < 0)) throw new ArgumentException($"tensor '{t.Name}' has a negative dimension {TditSchema.Shape(t.Shape)}");
        }

        long Bytes(TditTensorDecl t) => checked(t.Shape.Aggregate(1L, (a, b) => a * b) * t.DType.Size());
        var ordered = decls.Where(t => Bytes(t) % Alignment == 0)
            .Concat(decls.Where(t => Bytes(t) % Alignment != 0).OrderByDescending(t => t.DType.Size()));  // stable: F32, F16, U8
        var infos = new List<TditTensorInfo>(decls.Count);
        long offset = 0;
        foreach (var t in ordered)
        {
            long end = checked(offset + Bytes(t));
            infos.Add(new(t.Name, t.DType, t.Shape, kinds[t.Name], offset, end));
            offset = end;
        }

        var json = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(json, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteStartObject("__metadata__");
            w.WriteString(TditKeys.Checksum, ChecksumPrefix + new string('0', 64));
            foreach (var (k, v) in metadata) w.WriteString(k, v);
            w.WriteEndObject();
            foreach (var t in infos)
            {
                w.WriteStartObject(t.Name);
                w.WriteString("dtype", t.DType.Name());
                w.WriteStartArray("shape");
                foreach (var d in t.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(t.Begin);
                w.WriteNumberValue(t.End);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        var body = json.WrittenSpan;
        int dataStart = (8 + body.Length + Alignment - 1) / Alignment * Alignment;
        var prefix = new byte[dataStart];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)(dataStart - 8));
        body.CopyTo(prefix.AsSpan(8));
        prefix.AsSpan(8 + body.Length).Fill((byte)' ');

        int checksumOffset = 8 + Encoding.UTF8.GetByteCount($"{{\"__metadata__\":{{\"{TditKeys.Checksum}\":\"");
        if (!prefix.AsSpan(checksumOffset, ChecksumPrefix.Length).SequenceEqual(Encoding.ASCII.GetBytes(ChecksumPrefix)))
            throw new InvalidOperationException("checksum placeholder is not where the layout expects it");
        return new TditLayout(prefix, checksumOffset, offset, infos);
    }
}
