using System.Globalization;

namespace TerDiT.Runtime;

/// <summary>
/// The memory this process may use, and the check that refuses work before it allocates more. Sizes that come
/// from outside (a file's config, a command-line count) are turned into a byte estimate with 64-bit arithmetic
/// and compared here, so that they end in an <see cref="InsufficientMemoryException"/> with a message instead
/// of an allocation the machine cannot hold.
/// </summary>
public static class MemoryBudget
{
    /// <summary>
    /// Bytes available to this process: the garbage collector's view of the machine (physical memory, or the
    /// container's limit, or <c>DOTNET_GCHeapHardLimit</c> when set).
    /// </summary>
    public static long Available => GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;

    /// <summary>
    /// Throws <see cref="InsufficientMemoryException"/> "<paramref name="what"/> needs X GB, more than the Y GB
    /// this machine has" when <paramref name="bytes"/> exceeds <see cref="Available"/>.
    /// </summary>
    public static void Require(long bytes, string what)
    {
        long available = Available;
        if (bytes < 0 || bytes > available)
            throw new InsufficientMemoryException(string.Create(CultureInfo.InvariantCulture,
                $"{what} needs {Gb(bytes)}, more than the {Gb(available)} this machine has"));
    }

    /// <summary>Throws like <see cref="Require"/> when one array of <paramref name="elements"/> would exceed <see cref="Array.MaxLength"/>.</summary>
    public static void RequireArray(long elements, string what)
    {
        if (elements < 0 || elements > Array.MaxLength)
            throw new InsufficientMemoryException(string.Create(CultureInfo.InvariantCulture,
                $"{what} needs an array of {elements} elements, more than the {Array.MaxLength} an array holds"));
    }

    /// <summary><paramref name="count"/> · <paramref name="each"/> for non-negative factors, saturating at <see cref="long.MaxValue"/> instead of overflowing.</summary>
    public static long Multiply(long count, long each) => count != 0 && each > long.MaxValue / count ? long.MaxValue : count * each;

    /// <summary>"1.25 GB" (10⁹ bytes), or "overflowing 64 bits" for a negative (overflowed) count.</summary>
    public static string Gb(long bytes) =>
        bytes < 0 ? "more bytes than 64 bits count" : string.Create(CultureInfo.InvariantCulture, $"{bytes / 1e9:0.##} GB");
}
