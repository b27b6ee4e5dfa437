using System.Buffers;

namespace TerDiT.Runtime.Model;

/// <summary>
/// Bytes of a memory-mapped file as <see cref="Memory{T}"/>, without copying, so packed weights can
/// be used in place. The mapping's owner must outlive every user of this memory.
/// </summary>
sealed unsafe class MappedBytes : MemoryManager<byte>
{
    readonly byte* _pointer;
    readonly int _length;

    /// <param name="bytes">A span over unmanaged (mapped) memory; managed memory would move.</param>
    public MappedBytes(ReadOnlySpan<byte> bytes)
    {
        fixed (byte* p = bytes) _pointer = p;
        _length = bytes.Length;
    }

    public override Span<byte> GetSpan() => new(_pointer, _length);

    public override MemoryHandle Pin(int elementIndex = 0) => new(_pointer + elementIndex);

    public override void Unpin() { }

    protected override void Dispose(bool disposing) { }
}
