using TerDiT.Runtime.Config;

namespace TerDiT.Data;

/// <summary>Resolves a dataset name or folder (the CLI's <c>--data</c>) to images shaped for a model.</summary>
public static class DatasetSource
{
    public const string FashionMnistName = "fashion-mnist";

    /// <summary>
    /// <c>fashion-mnist</c>: the training split from <paramref name="fashionMnistDirectory"/> (default
    /// <see cref="FashionMnist.DefaultDirectory"/>), 28×28 centred on a black
    /// <c>InputSize</c>² canvas, or resized to it when <paramref name="resize"/> is set or the input is smaller than 28.
    /// Anything else: an <see cref="ImageFolder"/> resized to <c>InputSize</c> with <c>InChannels</c> channels.
    /// The result must match the model's channels and class count; <paramref name="limit"/> keeps the first N images.
    /// </summary>
    public static LabeledImages Load(string spec, TerDiTConfig config, string? fashionMnistDirectory = null, bool resize = false, int? limit = null)
    {
        LabeledImages data;
        if (spec.Equals(FashionMnistName, StringComparison.OrdinalIgnoreCase))
        {
            data = FashionMnist.Load(Split.Train, fashionMnistDirectory);
            data = resize || config.InputSize < data.Height ? data.Resize(config.InputSize) : data.PadTo(config.InputSize);
        }
        else
        {
            if (!Directory.Exists(spec))
                throw new DirectoryNotFoundException(
                    $"dataset '{spec}' is neither '{FashionMnistName}' nor an existing folder (expected DIR/<class>/*.png|jpg, one sub-folder per class)");
            data = ImageFolder.Load(spec, config.InputSize, config.InChannels);
        }
        if (data.Channels != config.InChannels)
            throw new ArgumentException($"dataset '{spec}' has {data.Channels} channel(s) but model '{config.Name}' expects {config.InChannels}");
        if (data.NumClasses > config.NumClasses)
            throw new ArgumentException($"dataset '{spec}' has {data.NumClasses} classes but model '{config.Name}' has only {config.NumClasses}");
        if (limit is { } n)
        {
            if (n <= 0) throw new ArgumentException($"--limit must be positive, not {n}");
            data = data.Take(n);
        }
        return data;
    }
}
