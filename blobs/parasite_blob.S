/* Embeds the flat drain parasite blob built from blobs/parasite/ (see CMake). */
  .section .rodata.cf_parasite, "a"
  .balign 4096
  .globl cf_parasite_blob_start
  .globl cf_parasite_blob_end
cf_parasite_blob_start:
  .incbin CF_PARASITE_BIN
cf_parasite_blob_end:
  .section .note.GNU-stack, "", @progbits
