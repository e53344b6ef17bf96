#include <stdio.h>

const char *codegen_digest(void);
const char *core_digest(void);
const char *net_digest(void);
const char *storage_digest(void);
const char *crypto_digest(void);
const char *ui_digest(void);

int main(void) {
  printf("codegen %s\ncore %s\nnet %s\nstorage %s\ncrypto %s\nui %s\n", codegen_digest(), core_digest(),
         net_digest(), storage_digest(), crypto_digest(), ui_digest());
  return 0;
}
