using System.Text;

namespace TerDiT.Runtime.Onnx;

/// <summary>
/// A protocol-buffers message built field by field and written in the standard wire format
/// (varint, 32-bit and length-delimited fields; repeated scalars one tag per element, which every
/// proto2 and proto3 parser accepts). Large byte fields can be <see cref="Blob"/>s: only their length
/// is held, and their bytes are produced by a callback while the message is written, so a model's
/// weights are never buffered. The few messages ONNX needs are built on this (<see cref="OnnxGraph"/>).
/// </summary>
internal sealed class ProtoMessage
{
    const int Varint = 0, Fixed32 = 5, LengthDelimited = 2;

    readonly List<Field> _fields = [];
    long _size = -1;

    /// <summary>One field: a varint or 32-bit value, bytes, a nested message, or a streamed blob.</summary>
    sealed record Field(int Number, int Wire, ulong Value, byte[]? Bytes, ProtoMessage? Message, long BlobLength, Action<Stream>? Blob);

    ProtoMessage Add(Field f)
    {
        _size = -1;
        _fields.Add(f);
        return this;
    }

    /// <summary>An int32/int64/enum field (negative values as 10-byte two's complement, as protobuf does).</summary>
    public ProtoMessage Int(int number, long value) => Add(new(number, Varint, unchecked((ulong)value), null, null, 0, null));

    public ProtoMessage Float(int number, float value) => Add(new(number, Fixed32, BitConverter.SingleToUInt32Bits(value), null, null, 0, null));

    public ProtoMessage String(int number, string value) => Bytes(number, Encoding.UTF8.GetBytes(value));

    public ProtoMessage Bytes(int number, byte[] value) => Add(new(number, LengthDelimited, 0, value, null, 0, null));

    public ProtoMessage Message(int number, ProtoMessage value) => Add(new(number, LengthDelimited, 0, null, value, 0, null));

    /// <summary>A bytes field of exactly <paramref name="length"/> bytes, which <paramref name="write"/> writes when the message is written.</summary>
    public ProtoMessage Blob(int number, long length, Action<Stream> write) => Add(new(number, LengthDelimited, 0, null, null, length, write));

    /// <summary>Encoded size in bytes (cached until the next field is added here; nested messages must not change after being added).</summary>
    public long Size
    {
        get
        {
            if (_size >= 0) return _size;
            long size = 0;
            foreach (var f in _fields)
            {
                size += VarintSize((ulong)f.Number << 3);
                long payload = PayloadLength(f);
                size += f.Wire switch
                {
                    Varint => VarintSize(f.Value),
                    Fixed32 => 4,
                    _ => VarintSize((ulong)payload) + payload,
                };
            }
            return _size = size;
        }
    }

    static long PayloadLength(Field f) => f.Bytes?.Length ?? f.Message?.Size ?? f.BlobLength;

    /// <summary>Writes the encoded message (without its own length prefix) to <paramref name="stream"/>.</summary>
    public void WriteTo(Stream stream)
    {
        Span<byte> scratch = stackalloc byte[10];
        foreach (var f in _fields)
        {
            WriteVarint(stream, (ulong)f.Number << 3 | (uint)f.Wire, scratch);
            switch (f.Wire)
            {
                case Varint: WriteVarint(stream, f.Value, scratch); break;
                case Fixed32:
                    BitConverter.TryWriteBytes(scratch, (uint)f.Value);
                    stream.Write(scratch[..4]);
                    break;
                default:
                    long length = PayloadLength(f);
                    WriteVarint(stream, (ulong)length, scratch);
                    if (f.Bytes != null) stream.Write(f.Bytes);
                    else if (f.Message != null) f.Message.WriteTo(stream);
                    else
                    {
                        long start = stream.Position;
                        f.Blob!(stream);
                        if (stream.Position - start != length)
                            throw new InvalidOperationException($"field {f.Number}: blob wrote {stream.Position - start} bytes, declared {length}");
                    }
                    break;
            }
        }
    }

    static int VarintSize(ulong v)
    {
        int n = 1;
        while (v >= 0x80) { v >>= 7; n++; }
        return n;
    }

    static void WriteVarint(Stream stream, ulong v, Span<byte> scratch)
    {
        int n = 0;
        while (v >= 0x80)
        {
            scratch[n++] = (byte)(v | 0x80);
            v >>= 7;
        }
        scratch[n++] = (byte)v;
        stream.Write(scratch[..n]);
    }
}
