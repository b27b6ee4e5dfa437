namespace TerDiT.Runtime.Import;

/// <summary>
/// The training arguments the TerDiT authors save beside their weights (<c>model_args.pth</c>, a pickled
/// <c>argparse.Namespace</c> of their training script): the fields their sampler reads. Every other field
/// of the namespace is ignored.
/// </summary>
/// <param name="Model">Their registry name, e.g. <c>DiT_Llama_600M_patch2</c>.</param>
/// <param name="ImageSize">Image side in pixels (256 or 512); the latents are ImageSize / 8.</param>
/// <param name="NumClasses">Class count (1000 for ImageNet).</param>
/// <param name="QkNorm">Whether attention normalises queries and keys.</param>
/// <param name="Vae">"ema" or "mse": which Stable Diffusion VAE decoder they sample with (null when absent).</param>
public sealed record AuthorsModelArgs(string Model, int ImageSize, int NumClasses, bool QkNorm, string? Vae)
{
    /// <summary>Reads and checks <c>model_args.pth</c>.</summary>
    /// <exception cref="ImportFormatException">Not a namespace, a field missing or of the wrong type, or sizes out of range.</exception>
    public static AuthorsModelArgs Read(string path)
    {
        using var file = TorchCheckpoint.Open(path);
        return FromNamespace(file.Namespace(), file.Name);
    }

    /// <summary>The fields of an unpickled namespace; <paramref name="where"/> prefixes errors.</summary>
    public static AuthorsModelArgs FromNamespace(PickleNamespace ns, string where)
    {
        ImportFormatException Bad(string what) => new($"{where}: {what}");
        T Field<T>(string name) =>
            ns.Fields.TryGetValue(name, out var v) ? v is T t ? t : throw Bad($"field '{name}' is {v?.GetType().Name ?? "None"}, expected {typeof(T).Name}")
                : throw Bad($"the namespace has no '{name}' field (not the authors' model_args.pth?)");
        long imageSize = Field<long>("image_size"), classes = Field<long>("num_classes");
        if (imageSize is <= 0 or > 1 << 16 || imageSize % 8 != 0) throw Bad($"image_size {imageSize} is not a positive multiple of 8 (the VAE downsamples by 8)");
        if (classes is <= 0 or > 1 << 20) throw Bad($"num_classes {classes} is out of range");
        ns.Fields.TryGetValue("vae", out var vae);
        return new AuthorsModelArgs(Field<string>("model"), (int)imageSize, (int)classes, Field<bool>("qk_norm"),
            vae as string ?? (vae is null ? null : throw Bad("field 'vae' is not a string")));
    }
}
