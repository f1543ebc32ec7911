/* Wine 8 lacks bcryptprimitives.dll, whose ProcessPrng Rust's standard
 * library (1.78 and later) calls for random bytes on Windows: without it a
 * Rust program exits at once with code 53 under Wine. This stand-in
 * exports ProcessPrng on top of RtlGenRandom (advapi32's
 * SystemFunction036). Built by .ci/windows, for the Wine prefix only. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
