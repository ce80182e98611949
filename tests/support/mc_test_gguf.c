#include "mc_test_gguf.h"

int mc_test_gguf_copy_data(mc_gguf_writer *w, const mc_gguf *src, const mc_gguf_tensor *t, mc_error *err)
{
    unsigned char buf[4096];
    int rc = 0;
    for (uint64_t off = 0; off < t->nbytes && !rc; off += sizeof buf) {
        size_t m = (size_t)(t->nbytes - off < sizeof buf ? t->nbytes - off : sizeof buf);
        rc = mc_gguf_read(src, t, off, buf, m, err);
        if (!rc) rc = mc_gguf_writer_write(w, buf, m, err);
    }
    return rc;
}
