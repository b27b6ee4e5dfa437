using System.Globalization;

namespace TerDiT.Runtime.Import;

/// <summary>
/// The 1000 ImageNet-1k classes: their names by standard index (torchvision's short names, embedded
/// as <c>imagenet-classes.txt</c>) and the label order of the TerDiT authors' checkpoints.
/// </summary>
public static class ImageNetClasses
{
    public const int Count = 1000;

    static readonly Lazy<string[]> NamesLazy = new(() =>
    {
        using var stream = typeof(ImageNetClasses).Assembly.GetManifestResourceStream("TerDiT.Runtime.Import.imagenet-classes.txt")
            ?? throw new InvalidOperationException("the ImageNet class names resource is missing from the assembly");
        using var reader = new StreamReader(stream);
        var names = reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        return names.Length == Count ? names : throw new InvalidOperationException($"the ImageNet class names resource has {names.Length} lines, not {Count}");
    });

    static readonly Lazy<int[]> AuthorsOrder = new(() =>
    {
        // Their data folders are named by class number and ordered as strings ("0", "1", "10", "100", …):
        // the label they train with is the rank of the number's string among all 1000 (docs/PAPER.md).
        var byString = Enumerable.Range(0, Count).Select(i => i.ToString(CultureInfo.InvariantCulture)).Order(StringComparer.Ordinal).ToArray();
        var label = new int[Count];
        for (int rank = 0; rank < Count; rank++) label[int.Parse(byString[rank], CultureInfo.InvariantCulture)] = rank;
        return label;
    });

    /// <summary>Class names by standard ImageNet index (0 = "tench", …, 999 = "toilet tissue").</summary>
    public static IReadOnlyList<string> Names => NamesLazy.Value;

    /// <summary>The label the authors' models use for standard ImageNet class <paramref name="standard"/> (0 → 0, 1 → 1, 10 → 2, 100 → 3, …).</summary>
    public static int AuthorsLabel(int standard) =>
        (uint)standard < Count ? AuthorsOrder.Value[standard] : throw new ArgumentOutOfRangeException(nameof(standard), standard, $"class must be in [0, {Count})");
}
