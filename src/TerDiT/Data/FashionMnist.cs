using System.Buffers.Binary;
using System.IO.Compression;

namespace TerDiT.Data;

public enum Split { Train, Test }

/// <summary>
/// Fashion-MNIST from the IDX files (optionally gzipped) of Debian's <c>dataset-fashion-mnist</c>:
/// 60k train + 10k test, 28×28 grey, 10 classes.
/// </summary>
public static class FashionMnist
{
    public const string DefaultDirectory = "/usr/share/datasets/fashion-mnist";

    public static readonly IReadOnlyList<string> ClassNames =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    /// <summary>Loads one split from <paramref name="directory"/> (default: the Debian package's folder).</summary>
    /// <exception cref="FileNotFoundException">The files are missing; the message says how to install them.</exception>
    /// <exception cref="InvalidDataException">A file is truncated or not IDX.</exception>
    public static LabeledImages Load(Split split, string? directory = null)
    {
        directory ??= DefaultDirectory;
        string prefix = split == Split.Train ? "train" : "t10k";
        string images = Find(directory, $"{prefix}-images-idx3-ubyte");
        string labels = Find(directory, $"{prefix}-labels-idx1-ubyte");
        var (pixels, h, w) = ReadImages(images);
        var y = ReadLabels(labels);
        if (y.Length * h * w != pixels.Length)
            throw new InvalidDataException($"{images} holds {pixels.Length / (h * w)} images but {labels} holds {y.Length} labels");
        return new LabeledImages(pixels, y, 1, h, w, ClassNames);
    }

    static string Find(string directory, string stem)
    {
        foreach (var name in new[] { stem + ".gz", stem })
        {
            var path = Path.Combine(directory, name);
            if (File.Exists(path)) return path;
        }
        throw new FileNotFoundException(
            $"Fashion-MNIST file {stem}(.gz) not found in {directory}. Install it with " +
            "'sudo apt-get install dataset-fashion-mnist' (Debian/Ubuntu) or put the IDX files there.");
    }

    static byte[] ReadAll(string path)
    {
        using var file = File.OpenRead(path);
        using Stream s = path.EndsWith(".gz", StringComparison.Ordinal) ? new GZipStream(file, CompressionMode.Decompress) : file;
        using var ms = new MemoryStream();
        try { s.CopyTo(ms); }
        catch (InvalidDataException e) { throw new InvalidDataException($"{path}: corrupt gzip data ({e.Message})"); }
        return ms.ToArray();
    }

    static (byte[] Pixels, int Height, int Width) ReadImages(string path)
    {
        var b = ReadAll(path);
        if (b.Length < 16 || BinaryPrimitives.ReadInt32BigEndian(b) != 2051)
            throw new InvalidDataException($"{path}: not an IDX image file (magic 2051 expected)");
        int n = BinaryPrimitives.ReadInt32BigEndian(b.AsSpan(4)), h = BinaryPrimitives.ReadInt32BigEndian(b.AsSpan(8)),
            w = BinaryPrimitives.ReadInt32BigEndian(b.AsSpan(12));
        if (n < 0 || h <= 0 || w <= 0 || (long)n * h * w != b.Length - 16)
            throw new InvalidDataException($"{path}: header says {n}×{h}×{w} pixels but the file holds {b.Length - 16} bytes (truncated?)");
        return (b.AsSpan(16).ToArray(), h, w);
    }

    static int[] ReadLabels(string path)
    {
        var b = ReadAll(path);
        if (b.Length < 8 || BinaryPrimitives.ReadInt32BigEndian(b) != 2049)
            throw new InvalidDataException($"{path}: not an IDX label file (magic 2049 expected)");
        int n = BinaryPrimitives.ReadInt32BigEndian(b.AsSpan(4));
        if (n < 0 || n != b.Length - 8)
            throw new InvalidDataException($"{path}: header says {n} labels but the file holds {b.Length - 8} bytes (truncated?)");
        var y = new int[n];
        for (int i = 0; i < n; i++)
        {
            y[i] = b[8 + i];
            if (y[i] >= ClassNames.Count) throw new InvalidDataException($"{path}: label {y[i]} at {i} is not a Fashion-MNIST class");
        }
        return y;
    }
}
