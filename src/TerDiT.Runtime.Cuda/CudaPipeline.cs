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
    /// </summary>
    /// <exception cref="TditFormatException">The file is not a valid packed model.</exception>
    /// <exception cref="CudaUnavailableException">No usable GPU, driver or NVRTC, or too little device memory.</exception>
    public static TerDiTPipeline Load(string path, CudaOptions? options = null)
    {
        options ??= new CudaOptions();
        using var file = TditFile.Open(path);
        var model = new CudaModel(new TditWeightSource(file), options);
        return new TerDiTPipeline(model, options.MaxBatch, model, file.Info.Classes);
    }
}
