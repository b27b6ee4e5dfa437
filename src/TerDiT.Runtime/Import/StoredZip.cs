using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;

namespace TerDiT.Runtime.Import;

/// <summary>One member of a <see cref="StoredZip"/>: its data is bytes [<see cref="Offset"/>, +<see cref="Length"/>) of the file.</summary>
public sealed record ZipMember(string Name, long Offset, long Length, uint Crc32);

/// <summary>
/// The directory of a zip archive whose members are stored uncompressed — the container PyTorch's
/// <c>torch.save</c> writes (miniz, method 0, zip64 where needed). Reading validates before trusting
/// any number: the end-of-central-directory record (and its zip64 twin), every central entry
/// (method 0, no encryption, sizes equal, one disk), each member's local header (signature, the same
/// name) and that every member's data lies inside the file. Member data is never copied here; the
/// caller slices it from the <see cref="ByteSource"/> and may check its CRC-32 with <see cref="VerifyCrc"/>.
/// </summary>
public static class StoredZip
{
    const uint EndSignature = 0x06054b50, Zip64EndSignature = 0x06064b50, Zip64LocatorSignature = 0x07064b50;
    const uint CentralSignature = 0x02014b50, LocalSignature = 0x04034b50;
    const int EndSize = 22, Zip64LocatorSize = 20, Zip64EndSize = 56, CentralSize = 46, LocalSize = 30;

    /// <summary>Most members accepted (a 7B-parameter state dict has a few hundred tensors).</summary>
    public const int MaxMembers = 1 << 20;

    /// <summary>Reads and validates the directory; members by name.</summary>
    /// <exception cref="ImportFormatException">Not a zip, a compressed or encrypted member, or an inconsistent directory.</exception>
    public static IReadOnlyDictionary<string, ZipMember> ReadDirectory(ByteSource file)
    {
        ImportFormatException Bad(string what) => new($"{file.Name}: {what}");
        long length = file.Length;
        if (length < EndSize) throw Bad($"{length} bytes is too short for a zip archive (empty or truncated file; a PyTorch .pth is a zip)");

        // The end record is the last 22 bytes plus a comment of up to 65535 bytes.
        long end = -1;
        int window = (int)Math.Min(length, EndSize + 0xFFFF);
        var tail = file.Slice(length - window, window);
        for (int i = window - EndSize; i >= 0; i--)
            if (BinaryPrimitives.ReadUInt32LittleEndian(tail[i..]) == EndSignature
                && BinaryPrimitives.ReadUInt16LittleEndian(tail[(i + 20)..]) == window - EndSize - i)
            {
                end = length - window + i;
                break;
            }
        if (end < 0) throw Bad("no end-of-central-directory record: not a zip archive, or truncated (a PyTorch .pth file is a zip)");

        var e = file.Slice(end, EndSize);
        if (BinaryPrimitives.ReadUInt16LittleEndian(e[4..]) != 0 || BinaryPrimitives.ReadUInt16LittleEndian(e[6..]) != 0)
            throw Bad("multi-disk zip archives are not supported");
        long count = BinaryPrimitives.ReadUInt16LittleEndian(e[10..]);
        long directorySize = BinaryPrimitives.ReadUInt32LittleEndian(e[12..]);
        long directoryOffset = BinaryPrimitives.ReadUInt32LittleEndian(e[16..]);
        if (count == 0xFFFF || directorySize == 0xFFFFFFFF || directoryOffset == 0xFFFFFFFF)
            (count, directorySize, directoryOffset) = ReadZip64End(file, end, Bad);
        if (count > MaxMembers) throw Bad($"the archive claims {count} members, more than the {MaxMembers} accepted");
        if (directoryOffset < 0 || directorySize < 0 || directoryOffset > end || directorySize > end - directoryOffset)
            throw Bad($"central directory [{directoryOffset}, +{directorySize}) does not lie before the end record at {end} (truncated file?)");
        if (count * CentralSize > directorySize) throw Bad($"central directory of {directorySize} bytes cannot hold {count} entries");

        var members = new Dictionary<string, ZipMember>((int)count, StringComparer.Ordinal);
        long at = directoryOffset, limit = directoryOffset + directorySize;
        for (long k = 0; k < count; k++)
        {
            if (limit - at < CentralSize) throw Bad($"central directory entry {k} runs past the directory's end");
            var c = file.Slice(at, CentralSize);
            if (BinaryPrimitives.ReadUInt32LittleEndian(c) != CentralSignature) throw Bad($"central directory entry {k} at offset {at} has a bad signature");
            int flags = BinaryPrimitives.ReadUInt16LittleEndian(c[8..]), method = BinaryPrimitives.ReadUInt16LittleEndian(c[10..]);
            uint crc = BinaryPrimitives.ReadUInt32LittleEndian(c[16..]);
            long compressed = BinaryPrimitives.ReadUInt32LittleEndian(c[20..]), size = BinaryPrimitives.ReadUInt32LittleEndian(c[24..]);
            int nameLength = BinaryPrimitives.ReadUInt16LittleEndian(c[28..]), extraLength = BinaryPrimitives.ReadUInt16LittleEndian(c[30..]);
            int commentLength = BinaryPrimitives.ReadUInt16LittleEndian(c[32..]), disk = BinaryPrimitives.ReadUInt16LittleEndian(c[34..]);
            long localOffset = BinaryPrimitives.ReadUInt32LittleEndian(c[42..]);
            long entrySize = (long)CentralSize + nameLength + extraLength + commentLength;
            if (limit - at < entrySize) throw Bad($"central directory entry {k} runs past the directory's end");
            string name = Name(file.Slice(at + CentralSize, nameLength), k, Bad);
            if (size == 0xFFFFFFFF || compressed == 0xFFFFFFFF || localOffset == 0xFFFFFFFF || disk == 0xFFFF)
                (size, compressed, localOffset, disk) = Zip64Extra(file.Slice(at + CentralSize + nameLength, extraLength), size, compressed, localOffset, disk, name, Bad);
            if ((flags & 1) != 0) throw Bad($"member '{name}' is encrypted");
            if (method != 0) throw Bad($"member '{name}' is compressed (method {method}); PyTorch stores members uncompressed");
            if (compressed != size) throw Bad($"member '{name}' has stored size {compressed} but size {size}");
            if (disk != 0) throw Bad($"member '{name}' is on disk {disk}; multi-disk archives are not supported");
            if (!members.TryAdd(name, new ZipMember(name, DataOffset(file, localOffset, name, size, directoryOffset, Bad), size, crc)))
                throw Bad($"the archive holds two members named '{name}'");
            at += entrySize;
        }
        return members;
    }

    /// <summary>Throws naming the member when its bytes do not hash to the CRC-32 of its directory entry.</summary>
    public static void VerifyCrc(ByteSource file, ZipMember member)
    {
        var crc = new Crc32();
        for (long done = 0; done < member.Length;)
        {
            int n = (int)Math.Min(1 << 30, member.Length - done);
            crc.Append(file.Slice(member.Offset + done, n));
            done += n;
        }
        uint actual = crc.GetCurrentHashAsUInt32();
        if (actual != member.Crc32)
            throw new ImportFormatException($"{file.Name}: member '{member.Name}' has CRC-32 {actual:x8}, its directory entry says {member.Crc32:x8} (corrupted or truncated download?)");
    }

    static (long Count, long Size, long Offset) ReadZip64End(ByteSource file, long end, Func<string, ImportFormatException> bad)
    {
        if (end < Zip64LocatorSize) throw bad("the end record asks for a zip64 locator, which is missing");
        var locator = file.Slice(end - Zip64LocatorSize, Zip64LocatorSize);
        if (BinaryPrimitives.ReadUInt32LittleEndian(locator) != Zip64LocatorSignature) throw bad("the end record asks for a zip64 locator, which is missing");
        ulong recordOffset = BinaryPrimitives.ReadUInt64LittleEndian(locator[8..]);
        if (end < Zip64LocatorSize + Zip64EndSize || recordOffset > (ulong)(end - Zip64LocatorSize - Zip64EndSize))
            throw bad($"zip64 end record offset {recordOffset} is out of range");
        var r = file.Slice((long)recordOffset, Zip64EndSize);
        if (BinaryPrimitives.ReadUInt32LittleEndian(r) != Zip64EndSignature) throw bad("zip64 end record has a bad signature");
        ulong count = BinaryPrimitives.ReadUInt64LittleEndian(r[32..]), size = BinaryPrimitives.ReadUInt64LittleEndian(r[40..]), offset = BinaryPrimitives.ReadUInt64LittleEndian(r[48..]);
        if (count > MaxMembers || size > long.MaxValue || offset > long.MaxValue) throw bad("zip64 end record holds out-of-range sizes");
        return ((long)count, (long)size, (long)offset);
    }

    /// <summary>The zip64 extended-information field replaces the 32-bit values that are all ones, in this order.</summary>
    static (long Size, long Compressed, long Offset, int Disk) Zip64Extra(ReadOnlySpan<byte> extra, long size, long compressed, long offset, int disk,
        string name, Func<string, ImportFormatException> bad)
    {
        while (extra.Length >= 4)
        {
            int id = BinaryPrimitives.ReadUInt16LittleEndian(extra), n = BinaryPrimitives.ReadUInt16LittleEndian(extra[2..]);
            if (n > extra.Length - 4) break;
            if (id == 1)
            {
                var f = extra.Slice(4, n);
                long Next(ref ReadOnlySpan<byte> s)
                {
                    if (s.Length < 8) throw bad($"member '{name}' has a short zip64 extra field");
                    ulong v = BinaryPrimitives.ReadUInt64LittleEndian(s);
                    s = s[8..];
                    return v <= long.MaxValue ? (long)v : throw bad($"member '{name}' has a zip64 value beyond 2^63");
                }
                if (size == 0xFFFFFFFF) size = Next(ref f);
                if (compressed == 0xFFFFFFFF) compressed = Next(ref f);
                if (offset == 0xFFFFFFFF) offset = Next(ref f);
                if (disk == 0xFFFF) disk = f.Length >= 4 ? (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(f), int.MaxValue) : throw bad($"member '{name}' has a short zip64 extra field");
                return (size, compressed, offset, disk);
            }
            extra = extra[(4 + n)..];
        }
        throw bad($"member '{name}' needs a zip64 extra field, which is missing");
    }

    /// <summary>Checks the local header at <paramref name="localOffset"/> and returns where the member's data starts.</summary>
    static long DataOffset(ByteSource file, long localOffset, string name, long size, long directoryOffset, Func<string, ImportFormatException> bad)
    {
        if (localOffset > directoryOffset - LocalSize) throw bad($"member '{name}' local header offset {localOffset} is out of range");
        var h = file.Slice(localOffset, LocalSize);
        if (BinaryPrimitives.ReadUInt32LittleEndian(h) != LocalSignature) throw bad($"member '{name}' local header at {localOffset} has a bad signature");
        int nameLength = BinaryPrimitives.ReadUInt16LittleEndian(h[26..]), extraLength = BinaryPrimitives.ReadUInt16LittleEndian(h[28..]);
        long data = localOffset + LocalSize + nameLength + extraLength;
        if (data > directoryOffset || size > directoryOffset - data)
            throw bad($"member '{name}' data [{data}, +{size}) runs into the central directory at {directoryOffset} (truncated or corrupted file?)");
        if (!file.Slice(localOffset + LocalSize, nameLength).SequenceEqual(Encoding.UTF8.GetBytes(name)))
            throw bad($"member '{name}' local header names a different member");
        return data;
    }

    static string Name(ReadOnlySpan<byte> bytes, long index, Func<string, ImportFormatException> bad)
    {
        try { return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes); }
        catch (DecoderFallbackException) { throw bad($"central directory entry {index} has a name that is not UTF-8"); }
    }
}
