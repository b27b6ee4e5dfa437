using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace TerDiT.Runtime.Cpu;

/// <summary>
/// The vector operations the lookup-table kernel needs, one implementation per (width, element):
/// the JIT specialises <see cref="LutKernel"/> for each struct, so there is one kernel source.
/// </summary>
internal unsafe interface ILanes<TV, TE> where TV : unmanaged where TE : unmanaged
{
    /// <summary>Tokens per table entry: <see cref="Vectors"/> vectors of TV.</summary>
    static abstract int Count { get; }
    /// <summary>
    /// Vectors per table entry: 1, or 2 where one entry's byte load and address computation feed two
    /// adds (256-bit lanes holding as many tokens as 512-bit ones: the sweep's cost is in the loads and
    /// addresses, not in the adds).
    /// </summary>
    static abstract int Vectors { get; }
    static abstract TV Zero { get; }
    static abstract TV Load(TE* p);
    static abstract void Store(TE* p, TV v);
    static abstract TV Add(TV a, TV b);
    static abstract TV Sub(TV a, TV b);
    static abstract TV Negate(TV a);
    /// <summary>
    /// Writes one vector <paramref name="acc"/> into its lanes' count of 32-bit accumulators at <paramref name="dst"/> (float, or int
    /// widened from short): added to what is there when <paramref name="add"/>, else replacing it.
    /// </summary>
    static abstract void Flush(TV acc, void* dst, bool add);
}

internal unsafe struct F512 : ILanes<Vector512<float>, float>
{
    public static int Count => Vector512<float>.Count;
    public static int Vectors => 1;
    public static Vector512<float> Zero => Vector512<float>.Zero;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Load(float* p) => Vector512.Load(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* p, Vector512<float> v) => v.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Sub(Vector512<float> a, Vector512<float> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Negate(Vector512<float> a) => -a;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Flush(Vector512<float> acc, void* dst, bool add) => (add ? Vector512.Load((float*)dst) + acc : acc).Store((float*)dst);
}

internal unsafe struct F256 : ILanes<Vector256<float>, float>
{
    public static int Count => Vector256<float>.Count;
    public static int Vectors => 1;
    public static Vector256<float> Zero => Vector256<float>.Zero;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Load(float* p) => Vector256.Load(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* p, Vector256<float> v) => v.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Sub(Vector256<float> a, Vector256<float> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Negate(Vector256<float> a) => -a;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Flush(Vector256<float> acc, void* dst, bool add) => (add ? Vector256.Load((float*)dst) + acc : acc).Store((float*)dst);
}

internal unsafe struct F128 : ILanes<Vector128<float>, float>
{
    public static int Count => Vector128<float>.Count;
    public static int Vectors => 1;
    public static Vector128<float> Zero => Vector128<float>.Zero;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Load(float* p) => Vector128.Load(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* p, Vector128<float> v) => v.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Add(Vector128<float> a, Vector128<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Sub(Vector128<float> a, Vector128<float> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Negate(Vector128<float> a) => -a;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Flush(Vector128<float> acc, void* dst, bool add) => (add ? Vector128.Load((float*)dst) + acc : acc).Store((float*)dst);
}

internal unsafe struct S512 : ILanes<Vector512<short>, short>
{
    public static int Count => Vector512<short>.Count;
    public static int Vectors => 1;
    public static Vector512<short> Zero => Vector512<short>.Zero;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<short> Load(short* p) => Vector512.Load(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(short* p, Vector512<short> v) => v.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<short> Add(Vector512<short> a, Vector512<short> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<short> Sub(Vector512<short> a, Vector512<short> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<short> Negate(Vector512<short> a) => -a;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Flush(Vector512<short> acc, void* dst, bool add)
    {
        var d = (int*)dst;
        var (lo, hi) = Vector512.Widen(acc);
        if (add) (lo, hi) = (Vector512.Load(d) + lo, Vector512.Load(d + Vector512<int>.Count) + hi);
        lo.Store(d);
        hi.Store(d + Vector512<int>.Count);
    }
}

internal unsafe struct S256 : ILanes<Vector256<short>, short>
{
    public static int Count => Vector256<short>.Count;
    public static int Vectors => 1;
    public static Vector256<short> Zero => Vector256<short>.Zero;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<short> Load(short* p) => Vector256.Load(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(short* p, Vector256<short> v) => v.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<short> Add(Vector256<short> a, Vector256<short> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<short> Sub(Vector256<short> a, Vector256<short> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<short> Negate(Vector256<short> a) => -a;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Flush(Vector256<short> acc, void* dst, bool add)
    {
        var d = (int*)dst;
        var (lo, hi) = Vector256.Widen(acc);
        if (add) (lo, hi) = (Vector256.Load(d) + lo, Vector256.Load(d + Vector256<int>.Count) + hi);
        lo.Store(d);
        hi.Store(d + Vector256<int>.Count);
    }
}

/// <summary>AVX2 fp32 entries of 16 tokens as two 256-bit vectors (<see cref="ILanes{TV, TE}.Vectors"/> = 2).</summary>
internal unsafe struct F256x2 : ILanes<Vector256<float>, float>
{
    public static int Count => 2 * Vector256<float>.Count;
    public static int Vectors => 2;
    public static Vector256<float> Zero => F256.Zero;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Load(float* p) => F256.Load(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* p, Vector256<float> v) => F256.Store(p, v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Sub(Vector256<float> a, Vector256<float> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Negate(Vector256<float> a) => -a;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Flush(Vector256<float> acc, void* dst, bool add) => F256.Flush(acc, dst, add);
}

/// <summary>AVX2 int16 entries of 32 tokens as two 256-bit vectors (<see cref="ILanes{TV, TE}.Vectors"/> = 2).</summary>
internal unsafe struct S256x2 : ILanes<Vector256<short>, short>
{
    public static int Count => 2 * Vector256<short>.Count;
    public static int Vectors => 2;
    public static Vector256<short> Zero => S256.Zero;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<short> Load(short* p) => S256.Load(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(short* p, Vector256<short> v) => S256.Store(p, v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<short> Add(Vector256<short> a, Vector256<short> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<short> Sub(Vector256<short> a, Vector256<short> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<short> Negate(Vector256<short> a) => -a;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Flush(Vector256<short> acc, void* dst, bool add) => S256.Flush(acc, dst, add);
}

internal unsafe struct S128 : ILanes<Vector128<short>, short>
{
    public static int Count => Vector128<short>.Count;
    public static int Vectors => 1;
    public static Vector128<short> Zero => Vector128<short>.Zero;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<short> Load(short* p) => Vector128.Load(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(short* p, Vector128<short> v) => v.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<short> Add(Vector128<short> a, Vector128<short> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<short> Sub(Vector128<short> a, Vector128<short> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<short> Negate(Vector128<short> a) => -a;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Flush(Vector128<short> acc, void* dst, bool add)
    {
        var d = (int*)dst;
        var (lo, hi) = Vector128.Widen(acc);
        if (add) (lo, hi) = (Vector128.Load(d) + lo, Vector128.Load(d + Vector128<int>.Count) + hi);
        lo.Store(d);
        hi.Store(d + Vector128<int>.Count);
    }
}
