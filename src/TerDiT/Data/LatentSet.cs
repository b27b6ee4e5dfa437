using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using TerDiT.Runtime.Format;
using TerDiT.Runtime.Import;
using TorchSharp;
using static TorchSharp.torch;

namespace TerDiT.Data;

/// <summary>
/// Images encoded by a VAE (<c>terdit encode</c>): per image the posterior's mean and standard deviation in
/// the VAE's latent space, and its label. Training draws a fresh latent per use,
/// <c>x = (mean + std·ε) · scaling_factor</c>, as the authors' training loop does with
/// <c>vae.encode(x).latent_dist.sample() · 0.18215</c>.
/// <para>File (<c>.latents</c>): safetensors with tensors <c>mean</c>, <c>std</c> (F32, (N, C, h, w)) and
/// <c>labels</c> (I64, (N)); <c>__metadata__</c>: <c>format</c> = <c>terdit-latents</c>, <c>format_version</c> = 1,
/// <c>vae</c>, <c>vae_sha256</c>, <c>scaling_factor</c>, <c>image_size</c> and <c>classes</c> (JSON array).</para>
/// </summary>
public sealed class LatentSet : ITrainingSet
{
    const string FormatName = "terdit-latents", FormatVersion = "1";

    readonly float[] _mean, _std;   // (N, C, h, w)
    readonly int[] _labels;

    public int Count => _labels.Length;
    public int Channels { get; }
    public int Height { get; }
    public int Width => Height;
    /// <summary>Side of the encoded images in pixels.</summary>
    public int ImageSize { get; }
    public IReadOnlyList<string> ClassNames { get; }
    public TditLatent Latent { get; }
    TditLatent? ITrainingSet.Latent => Latent;
    int SampleLength => Channels * Height * Width;

    /// <exception cref="ArgumentException">Sizes that do not agree, a label outside the classes, a non-finite or negative value.</exception>
    public LatentSet(float[] mean, float[] std, int[] labels, int channels, int size, int imageSize, IReadOnlyList<string> classNames, TditLatent latent)
    {
        if (channels <= 0 || size <= 0 || imageSize <= 0) throw new ArgumentException("latent dimensions must be positive");
        long n = (long)labels.Length * channels * size * size;
        if (mean.Length != n || std.Length != n) throw new ArgumentException($"{mean.Length} means and {std.Length} deviations for {labels.Length} latents of {channels}×{size}×{size}");
        foreach (int y in labels)
            if (y < 0 || y >= classNames.Count) throw new ArgumentException($"label {y} outside 0..{classNames.Count - 1}");
        for (int i = 0; i < mean.Length; i++)
            if (!float.IsFinite(mean[i]) || !(std[i] >= 0) || !float.IsFinite(std[i])) throw new ArgumentException($"latent value {i} is not finite (mean {mean[i]}, std {std[i]})");
        (_mean, _std, _labels, Channels, Height, ImageSize, ClassNames, Latent) = (mean, std, labels, channels, size, imageSize, classNames, latent);
    }

    /// <summary>The first <paramref name="n"/> latents (or all, if fewer).</summary>
    public LatentSet Take(int n)
    {
        if (n <= 0) throw new ArgumentException($"--limit must be positive, not {n}");
        n = Math.Min(n, Count);
        return new LatentSet(_mean[..(n * SampleLength)], _std[..(n * SampleLength)], _labels[..n], Channels, Height, ImageSize, ClassNames, Latent);
    }

    /// <summary>Writes the set (atomically).</summary>
    public void Save(string path)
    {
        var metadata = new Dictionary<string, string>
        {
            ["format"] = FormatName,
            ["format_version"] = FormatVersion,
            ["vae"] = Latent.Vae,
            ["vae_sha256"] = Latent.VaeSha256 ?? "",
            ["scaling_factor"] = Latent.ScalingFactor.ToString("R", CultureInfo.InvariantCulture),
            ["image_size"] = ImageSize.ToString(CultureInfo.InvariantCulture),
            ["classes"] = JsonSerializer.Serialize(ClassNames),
        };
        long[] shape = [Count, Channels, Height, Width];
        var labels = _labels.Select(v => (long)v).ToArray();
        SafetensorsFile.Write(path, metadata,
        [
            ("mean", "F32", shape, MemoryMarshal.AsBytes(_mean.AsSpan()).ToArray()),
            ("std", "F32", shape, MemoryMarshal.AsBytes(_std.AsSpan()).ToArray()),
            ("labels", "I64", [Count], MemoryMarshal.AsBytes(labels.AsSpan()).ToArray()),
        ]);
    }

    /// <summary>Whether <paramref name="path"/> is a file (a latents file is a file; image data is a folder or a dataset name).</summary>
    public static bool IsLatentFile(string path) => File.Exists(path);

    /// <summary>The class names a latents file records (empty when it is not a readable latents file).</summary>
    public static IReadOnlyList<string> ClassNamesOf(string path)
    {
        try
        {
            using var file = SafetensorsFile.Open(path);
            return file.Metadata.TryGetValue("format", out var f) && f == FormatName && file.Metadata.TryGetValue("classes", out var json)
                ? JsonSerializer.Deserialize<string[]>(json) ?? []
                : [];
        }
        catch (Exception e) when (e is ImportFormatException or JsonException or IOException) { return []; }
    }

    /// <summary>Reads and validates a latents file.</summary>
    /// <exception cref="ImportFormatException">Not a latents file, or inconsistent contents.</exception>
    public static LatentSet Load(string path)
    {
        using var file = SafetensorsFile.Open(path);
        return Read(file);
    }

    /// <summary>The latent set in an open safetensors file (from a path or bytes), validated.</summary>
    /// <exception cref="ImportFormatException">Not a latents file, or inconsistent contents.</exception>
    public static LatentSet Read(SafetensorsFile file)
    {
        ImportFormatException Bad(string what) => new($"{file.Name}: {what}");
        string Meta(string key) => file.Metadata.TryGetValue(key, out var v) ? v : throw Bad($"__metadata__ has no '{key}' (not a latents file from terdit encode?)");
        if (Meta("format") != FormatName) throw Bad($"format is '{Meta("format")}', expected '{FormatName}' (write one with terdit encode)");
        if (Meta("format_version") != FormatVersion) throw Bad($"unsupported format_version '{Meta("format_version")}'");
        var mean = file.Tensor("mean");
        if (mean.DType != "F32" || mean.Shape.Length != 4 || mean.Shape[2] != mean.Shape[3] || mean.Shape.Any(d => d is 0 or > int.MaxValue))
            throw Bad($"'mean' is {mean.DType} [{string.Join(", ", mean.Shape)}], expected F32 (N, C, h, h)");
        var std = file.Tensor("std");
        if (std.DType != "F32" || !std.Shape.SequenceEqual(mean.Shape)) throw Bad("'std' does not have the shape and dtype of 'mean'");
        var labels = file.Tensor("labels");
        if (!labels.Shape.SequenceEqual([mean.Shape[0]])) throw Bad($"'labels' has shape [{string.Join(", ", labels.Shape)}], expected [{mean.Shape[0]}]");
        string[] classes;
        try { classes = JsonSerializer.Deserialize<string[]>(Meta("classes")) ?? throw new JsonException("null"); }
        catch (JsonException e) { throw Bad($"'classes' is not a JSON array of strings: {e.Message}"); }
        if (!double.TryParse(Meta("scaling_factor"), NumberStyles.Float, CultureInfo.InvariantCulture, out double scale)
            || !int.TryParse(Meta("image_size"), NumberStyles.None, CultureInfo.InvariantCulture, out int imageSize))
            throw Bad("'scaling_factor' or 'image_size' is not a number");
        var sha = Meta("vae_sha256");
        var latent = new TditLatent { Vae = Meta("vae"), VaeSha256 = sha.Length == 0 ? null : sha, ScalingFactor = scale };
        var labelValues = file.ReadIntegers("labels");
        if (labelValues.Any(v => v < 0 || v >= classes.Length)) throw Bad($"a label lies outside 0..{classes.Length - 1}");
        try
        {
            return new LatentSet(file.ReadFloats("mean"), file.ReadFloats("std"), labelValues.Select(v => (int)v).ToArray(),
                (int)mean.Shape[1], (int)mean.Shape[2], imageSize, classes, latent);
        }
        catch (ArgumentException e) { throw Bad(e.Message); }
    }

    /// <summary>x = (mean + std·ε)·scaling_factor with ε ~ N(0, 1) from a CPU generator seeded <paramref name="sampleSeed"/>, drawn (N, C, h, w) at once.</summary>
    public (Tensor X, Tensor Y) Gather(ReadOnlySpan<int> indices, ulong sampleSeed, Device? device, ScalarType dtype)
    {
        int n = indices.Length, per = SampleLength;
        var mean = new float[(long)n * per];
        var std = new float[(long)n * per];
        var labels = new long[n];
        for (int i = 0; i < n; i++)
        {
            int k = indices[i];
            if ((uint)k >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(indices), $"latent index {k} outside 0..{Count - 1}");
            _mean.AsSpan(k * per, per).CopyTo(mean.AsSpan(i * per));
            _std.AsSpan(k * per, per).CopyTo(std.AsSpan(i * per));
            labels[i] = _labels[k];
        }
        using var scope = NewDisposeScope();
        using var generator = new Generator(sampleSeed, CPU);
        long[] shape = [n, Channels, Height, Width];
        var eps = randn(shape, ScalarType.Float32, generator: generator);                      // (N, C, h, w)
        using var scaling = Latent.ScalingFactor.ToScalar();
        var x = tensor(mean, shape).Plus(tensor(std, shape).mul(eps)).mul(scaling);              // (N, C, h, w)
        var y = tensor(labels, [n]);
        return (x.to(dtype, device ?? CPU).MoveToOuterDisposeScope(), y.to(device ?? CPU).MoveToOuterDisposeScope());
    }
}
