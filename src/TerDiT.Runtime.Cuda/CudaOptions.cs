using TerDiT.Runtime.Cpu;

namespace TerDiT.Runtime.Cuda;

/// <summary>How the CUDA backend runs a model.</summary>
public sealed record CudaOptions
{
    /// <summary>
    /// Activation precision of the ternary GEMMs: <see cref="GemmMode.Exact"/> (three int8 planes a value, fp32
    /// attention) or <see cref="GemmMode.A8"/> (the CPU runtime's per-token int8 arithmetic, bf16 tensor-core attention).
    /// </summary>
    public GemmMode Mode { get; init; } = GemmMode.Exact;

    /// <summary>Most images a sampler puts through one forward before guidance doubles it (as <c>RuntimeOptions.MaxBatch</c>).</summary>
    public int MaxBatch { get; init; } = 16;

    /// <summary>CUDA device ordinal.</summary>
    public int Device { get; init; }

    /// <summary>Replay each batch size's forward as a captured CUDA graph (one launch a step) after its first eager run.</summary>
    public bool UseGraphs { get; init; } = true;

    /// <summary>
    /// False runs every ternary GEMM on the plain reference kernel and attention on the fp32 kernel: the slow
    /// specification the fast forward is tested against.
    /// </summary>
    public bool FastKernels { get; init; } = true;
}
