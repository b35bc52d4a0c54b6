# KILN_SANITIZE=ON instruments every target with ASan + UBSan and makes UB fatal.
if(KILN_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined
                      -fno-omit-frame-pointer -g)
  add_link_options(-fsanitize=address,undefined)
  add_compile_definitions(KILN_NO_ALLOC_CACHE)
endif()
