using TerDiT.Runtime;

namespace TerDiT.Distributed;

/// <summary>
/// Hands a small blob (the NCCL unique id) from rank 0 to the other ranks through a file: rank 0
/// writes it to a temporary name and renames it into place, so a reader sees all of it or nothing.
/// </summary>
public static class Rendezvous
{
    /// <summary>Writes <paramref name="payload"/> to <paramref name="path"/> atomically (temp file + rename).</summary>
    public static void Publish(string path, ReadOnlySpan<byte> payload) => AtomicFile.WriteAllBytes(path, payload);

    /// <summary>
    /// Waits until <paramref name="path"/> exists and returns its contents, which must be exactly
    /// <paramref name="length"/> bytes. Throws <see cref="TimeoutException"/> after <paramref name="timeout"/>
    /// and <see cref="InvalidDataException"/> for a file of another length.
    /// </summary>
    public static byte[] Wait(string path, int length, TimeSpan timeout, CancellationToken cancellation = default)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            cancellation.ThrowIfCancellationRequested();
            if (File.Exists(path))
            {
                var bytes = File.ReadAllBytes(path);
                if (bytes.Length != length)
                    throw new InvalidDataException($"rendezvous file {path} holds {bytes.Length} bytes, expected {length} (a stale file from another run?)");
                return bytes;
            }
            if (DateTime.UtcNow >= deadline)
                throw new TimeoutException($"rank 0 did not publish {path} within {timeout.TotalSeconds:0} s (did rank 0 start, and is the path on a shared file system?)");
            Thread.Sleep(20);
        }
    }
}
