using TerDiT.Runtime.Diffusion;
using TerDiT.Runtime.Format;
using TerDiT.Runtime.Model;

namespace TerDiT.Runtime.Cuda;

/// <summary>
/// Class-conditional sampling on an NVIDIA GPU: a <see cref="TerDiTPipeline"/> whose model is a
/// <see cref="CudaModel"/>, so sampling, batching and seeds behave exactly as on the CPU runtime.
/// </summary>
/// <example>
/// <code>
/// using var pipe = CudaPipeline.Load("model.tdit", new CudaOptions { Mode = GemmMode.A8 });
/// float[] images = pipe.Sample([0, 7], perClass: 4, steps: 50, SamplerKind.Ddim, guidance: 1.5, seed: 1);
/// </code>
/// </example>
public static class CudaPipeline
{
    /// <summary>
    /// Opens and validates a packed model, uploads it to the GPU (the file is closed afterwards) and builds the pipeline.
    /// A latent model's samples are decoded on the CPU by the VAE in <paramref name="vaeDirectory"/>
    /// (<see cref="TerDiTPipeline.LatentDecoder"/>) with <paramref name="cpuOptions"/>' threads.
    /// </summary>
    /// <exception cref="TditFormatException">The file is not a valid packed model.</exception>
    /// <exception cref="CudaUnavailableException">No usable GPU, driver or NVRTC, or too little device memory.</exception>
    /// <exception cref="ArgumentException">A VAE missing, not needed, or not the model's.</exception>
    public static TerDiTPipeline Load(string path, CudaOptions? options = null, string? vaeDirectory = null, RuntimeOptions? cpuOptions = null)
    {
        options ??= new CudaOptions();
        using var file = TditFile.Open(path);
        var diffusion = DiffusionProcess.For(file);
        var decoder = TerDiTPipeline.LatentDecoder(file, vaeDirectory, cpuOptions);
        var model = new CudaModel(new TditWeightSource(file), options);
        return new TerDiTPipeline(model, options.MaxBatch, model, file.Info.Classes, decoder, diffusion);
    }
}
