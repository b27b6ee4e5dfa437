using System.Security.Cryptography;
using TerDiT.Runtime.Import;

namespace TerDiT.Runtime.Vae;

/// <summary>
/// A diffusers <c>AutoencoderKL</c> folder: <c>config.json</c> and <c>diffusion_pytorch_model.safetensors</c>
/// (F32, F16 or BF16 tensors, read as float32). Tensors are looked up by diffusers' current names; files
/// written by older diffusers versions name the mid-block attention <c>query</c>, <c>key</c>,
/// <c>value</c>, <c>proj_attn</c> (instead of <c>to_q</c>, <c>to_k</c>, <c>to_v</c>, <c>to_out.0</c>)
/// and are read the same. The VAE's identity is the SHA-256 of its weights file.
/// </summary>
public sealed class VaeWeights : IDisposable
{
    public const string WeightsFileName = "diffusion_pytorch_model.safetensors";

    readonly SafetensorsFile _file;
    readonly Dictionary<string, string> _fileName; // current diffusers name → name in the file

    public VaeConfig Config { get; }
    /// <summary>The folder's name, for messages and metadata.</summary>
    public string Name { get; }
    /// <summary>SHA-256 of the weights file, 64 lower-case hex digits.</summary>
    public string Sha256 { get; }

    VaeWeights(VaeConfig config, SafetensorsFile file, string name, string sha256)
    {
        (Config, _file, Name, Sha256) = (config, file, name, sha256);
        _fileName = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var n in file.Tensors.Keys)
            if (!_fileName.TryAdd(CurrentName(n), n))
                throw new ImportFormatException($"{file.Name}: tensors '{_fileName[CurrentName(n)]}' and '{n}' are the same parameter");
    }

    /// <summary>Opens and validates a VAE folder; hashes its weights file.</summary>
    /// <exception cref="FileNotFoundException">The folder lacks config.json or the weights file.</exception>
    /// <exception cref="ImportFormatException">A malformed config or weights file.</exception>
    public static VaeWeights Open(string directory)
    {
        var config = VaeConfig.Load(directory);
        var path = Path.Combine(directory, WeightsFileName);
        if (!File.Exists(path)) throw new FileNotFoundException($"{directory} has no {WeightsFileName} (a diffusers AutoencoderKL folder holds config.json and {WeightsFileName})");
        return Open(config, path, Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory))));
    }

    /// <summary>Opens and validates the weights file <paramref name="weightsPath"/> of a VAE with <paramref name="config"/>; hashes it.</summary>
    /// <param name="name">The VAE's name (<see cref="Name"/>).</param>
    /// <exception cref="ImportFormatException">A malformed weights file.</exception>
    public static VaeWeights Open(VaeConfig config, string weightsPath, string name)
    {
        var sha = Sha256Of(weightsPath);
        var file = SafetensorsFile.Open(weightsPath);
        try { return new VaeWeights(config, file, name, sha); }
        catch { file.Dispose(); throw; }
    }

    /// <summary>SHA-256 of a file as 64 lower-case hex digits.</summary>
    public static string Sha256Of(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    /// <summary>The diffusers name of a tensor that older versions named differently.</summary>
    static string CurrentName(string name)
    {
        foreach (var (old, current) in new[] { (".query.", ".to_q."), (".key.", ".to_k."), (".value.", ".to_v."), (".proj_attn.", ".to_out.0.") })
            if (name.Contains(old, StringComparison.Ordinal)) return name.Replace(old, current, StringComparison.Ordinal);
        return name;
    }

    public bool Contains(string name) => _fileName.ContainsKey(name);

    /// <summary>
    /// The tensor <paramref name="name"/> (diffusers' current name) as float32, checked to have
    /// <paramref name="shape"/>; a linear weight (out, in) may also be stored as a 1×1 convolution (out, in, 1, 1).
    /// </summary>
    /// <exception cref="ImportFormatException">Missing, or of another shape.</exception>
    public float[] Get(string name, params long[] shape)
    {
        if (!_fileName.TryGetValue(name, out var stored)) throw new ImportFormatException($"{_file.Name}: no tensor '{name}' (config.json and the weights disagree?)");
        var t = _file.Tensor(stored);
        bool linearAsConv = shape.Length == 2 && t.Shape is [var o, var i, 1, 1] && o == shape[0] && i == shape[1];
        if (!t.Shape.SequenceEqual(shape) && !linearAsConv)
            throw new ImportFormatException($"{_file.Name}: tensor '{stored}' has shape [{string.Join(", ", t.Shape)}], the config needs [{string.Join(", ", shape)}]");
        return _file.ReadFloats(stored);
    }

    public void Dispose() => _file.Dispose();
}
