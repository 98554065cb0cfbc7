/* Embeds the flat restorer blob built from blobs/restorer/ (see CMake). */
  .section .rodata.cf_restorer, "a"
  .balign 4096
  .globl cf_restorer_blob_start
  .globl cf_restorer_blob_end
cf_restorer_blob_start:
  .incbin CF_RESTORER_BIN
cf_restorer_blob_end:
  .section .note.GNU-stack, "", @progbits
