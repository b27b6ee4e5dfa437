namespace TerDiT.Distributed;

/// <summary>
/// What <see cref="Launcher"/> tells each process it starts, through environment variables:
/// <c>TERDIT_RANK</c>, <c>TERDIT_WORLD_SIZE</c> and <c>TERDIT_RENDEZVOUS</c> (the file in which rank 0
/// publishes the NCCL unique id). A process without <c>TERDIT_RANK</c> is not a launched rank.
/// </summary>
public sealed record DistributedEnvironment(int Rank, int WorldSize, string RendezvousFile)
{
    public const string RankVariable = "TERDIT_RANK";
    public const string WorldSizeVariable = "TERDIT_WORLD_SIZE";
    public const string RendezvousVariable = "TERDIT_RENDEZVOUS";
    /// <summary>NCCL's switch for NVLink SHARP / multicast; the GPU machines require it off ("0").</summary>
    public const string NvlsVariable = "NCCL_NVLS_ENABLE";

    /// <summary>True for rank 0, the rank that writes checkpoints, logs and samples.</summary>
    public bool IsMain => Rank == 0;

    /// <summary>
    /// The launched rank's environment, or null when <c>TERDIT_RANK</c> is unset. Throws
    /// <see cref="InvalidOperationException"/> naming the variable when a value is missing or out of range.
    /// </summary>
    public static DistributedEnvironment? Read(Func<string, string?>? getVariable = null)
    {
        getVariable ??= Environment.GetEnvironmentVariable;
        var rankText = getVariable(RankVariable);
        if (string.IsNullOrEmpty(rankText)) return null;
        int Parse(string name, string? text) => int.TryParse(text, out var v) ? v
            : throw new InvalidOperationException($"{name} must be an integer, not '{text}'");
        int rank = Parse(RankVariable, rankText);
        int world = Parse(WorldSizeVariable, getVariable(WorldSizeVariable));
        if (world < 1) throw new InvalidOperationException($"{WorldSizeVariable} must be ≥ 1, not {world}");
        if ((uint)rank >= (uint)world) throw new InvalidOperationException($"{RankVariable} {rank} is outside 0..{world - 1}");
        var file = getVariable(RendezvousVariable);
        if (string.IsNullOrEmpty(file)) throw new InvalidOperationException($"{RendezvousVariable} is not set");
        return new DistributedEnvironment(rank, world, file);
    }
}
