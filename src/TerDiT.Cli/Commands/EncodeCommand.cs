using System.CommandLine;
using TerDiT.Vae;

namespace TerDiT.Cli.Commands;

/// <summary>
/// <c>terdit encode --data DIR --vae VAE_DIR --out LATENTS</c>: an image folder (one sub-folder per class)
/// encoded by a diffusers AutoencoderKL into a latents file that <c>terdit train --data LATENTS</c> trains on.
/// </summary>
static class EncodeCommand
{
    public static Command Create()
    {
        var data = new Option<string>("--data") { Description = "image folder: one sub-folder of PNG/JPEG images per class", Required = true };
        var vae = new Option<string>("--vae") { Description = "a diffusers AutoencoderKL folder (config.json + diffusion_pytorch_model.safetensors)", Required = true };
        var size = new Option<int>("--image-size") { Description = "images are centre-cropped and resized to this side (256 or 512 for the paper's models)", DefaultValueFactory = _ => 256 };
        var batch = new Option<int>("--batch") { Description = "images encoded at once", DefaultValueFactory = _ => 8 };
        var output = new Option<string>("--out") { Description = "latents file to write", Required = true };
        var device = DeviceOption.Create();
        var threads = ThreadsOption.Create();

        var command = new Command("encode", "Encode an image folder into VAE latents for latent-space training.");
        foreach (var o in new Option[] { data, vae, size, batch, output, device, threads }) command.Add(o);
        command.SetAction(p => CliApp.Guard(p, stdout =>
        {
            ThreadsOption.Apply(p.GetValue(threads));
            var dev = DeviceOption.Resolve(p.GetValue(device)!);
            var set = LatentEncoder.EncodeFolder(p.GetValue(data)!, p.GetValue(vae)!, p.GetValue(size), p.GetValue(batch), dev,
                new ProgressLines(stdout, "encode", "images").Report);
            set.Save(p.GetValue(output)!);
            stdout.WriteLine($"{p.GetValue(output)}: {set.Count} latents {set.Channels}×{set.Height}×{set.Width} of {set.ClassNames.Count} classes (VAE {set.Latent.Vae}, sha256 {set.Latent.VaeSha256})");
            return 0;
        }));
        return command;
    }
}
