using System.Runtime.Intrinsics;

namespace TerDiT.Runtime.Cpu;

/// <summary>Which code path a kernel runs: the scalar reference or a vector width.</summary>
public enum SimdPath
{
    /// <summary>The scalar reference (the specification).</summary>
    Scalar,
    /// <summary>128-bit vectors (SSE / NEON).</summary>
    V128,
    /// <summary>256-bit vectors (AVX2).</summary>
    V256,
    /// <summary>512-bit vectors (AVX-512 F/BW).</summary>
    V512,
}

/// <summary>Run-time choice of <see cref="SimdPath"/>.</summary>
public static class SimdPaths
{
    /// <summary>Whether <paramref name="path"/> is hardware accelerated here (Scalar always is).</summary>
    public static bool IsSupported(SimdPath path) => path switch
    {
        SimdPath.Scalar => true,
        SimdPath.V128 => Vector128.IsHardwareAccelerated,
        SimdPath.V256 => Vector256.IsHardwareAccelerated,
        SimdPath.V512 => Vector512.IsHardwareAccelerated,
        _ => false,
    };

    /// <summary>The widest supported path.</summary>
    public static SimdPath Best =>
        IsSupported(SimdPath.V512) ? SimdPath.V512
        : IsSupported(SimdPath.V256) ? SimdPath.V256
        : IsSupported(SimdPath.V128) ? SimdPath.V128
        : SimdPath.Scalar;

    /// <summary>Every supported path, scalar first.</summary>
    public static IReadOnlyList<SimdPath> Supported =>
        Enum.GetValues<SimdPath>().Where(IsSupported).ToArray();

    internal static void EnsureSupported(SimdPath path)
    {
        if (!Enum.IsDefined(path)) throw new ArgumentOutOfRangeException(nameof(path), path, "unknown SIMD path");
        if (!IsSupported(path))
            throw new NotSupportedException($"SIMD path {path} is not hardware accelerated on this machine (supported: {string.Join(", ", Supported)})");
    }
}
