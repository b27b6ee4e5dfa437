using System.Runtime.CompilerServices;

namespace TerDiT.Runtime.Ops;

/// <summary>
/// A buffer whose first element sits on a 64-byte boundary (one cache line, one 512-bit vector): a
/// pinned array, which never moves, seen from its first aligned element. With row widths that are
/// multiples of 64 bytes, the kernels' 512-bit loads and stores then never straddle two lines (a
/// plain array starts 8 or 16 bytes past a line; measured on a TerDiT-S A8 step: 1.5–2 %).
/// </summary>
sealed unsafe class AlignedBuffer<T> where T : unmanaged
{
    const int Alignment = 64;
    readonly T[] _array;
    readonly int _offset;

    public AlignedBuffer(int length)
    {
        _array = GC.AllocateArray<T>(length + Alignment / sizeof(T), pinned: true);
        nint address = (nint)Unsafe.AsPointer(ref _array[0]);
        _offset = (int)((-address & (Alignment - 1)) / sizeof(T));
        Length = length;
    }

    public int Length { get; }

    public ref T this[int index] => ref AsSpan()[index];

    /// <summary>The first element, for <c>fixed</c> (the array is pinned anyway).</summary>
    public ref T GetPinnableReference() => ref _array[_offset];

    public Span<T> AsSpan() => _array.AsSpan(_offset, Length);

    public Span<T> AsSpan(int start, int length) => AsSpan().Slice(start, length);

    public Memory<T> AsMemory(int start, int length) => _array.AsMemory(_offset, Length).Slice(start, length);

    public static implicit operator Span<T>(AlignedBuffer<T> a) => a.AsSpan();

    public static implicit operator ReadOnlySpan<T>(AlignedBuffer<T> a) => a.AsSpan();
}
