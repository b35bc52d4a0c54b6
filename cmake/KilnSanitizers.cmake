# KILN_SANITIZE=ON instruments every target with ASan + UBSan and makes UB fatal.
# KILN_SANITIZE=thread instruments every target with ThreadSanitizer (scripts/dev.sh test builds
# and runs only the thread stress tests that way). The caching allocator stays on under TSan: its
# locking is part of what the stress tests exercise.
if(KILN_SANITIZE STREQUAL "thread")
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer -g)
  add_link_options(-fsanitize=thread)
elseif(KILN_SANITIZE)
  # float-cast-overflow is not part of -fsanitize=undefined in GCC: a float -> int
  # conversion out of range is UB that kiln must reject before it happens.
  add_compile_options(-fsanitize=address,undefined,float-cast-overflow
                      -fno-sanitize-recover=undefined,float-cast-overflow
                      -fno-omit-frame-pointer -g)
  add_link_options(-fsanitize=address,undefined,float-cast-overflow)
  add_compile_definitions(KILN_NO_ALLOC_CACHE)
endif()
