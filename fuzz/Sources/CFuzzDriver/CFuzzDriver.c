// Intentionally empty: the target only exports the LLVMFuzzerRunDriver declaration.
#include "CFuzzDriver.h"
