# Install rules, the CMake package (find_package(kiln) -> kiln::kiln) and kiln.pc.
include(CMakePackageConfigHelpers)

install(TARGETS kiln EXPORT kilnTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
# libkiln_mpi.so (kiln/distributed.h), when MPI was found.
if(TARGET kiln_mpi)
  install(TARGETS kiln_mpi EXPORT kilnTargets LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
endif()
# libkiln.so's private helper (src/openmp_env), found through libkiln.so's RUNPATH ($ORIGIN).
install(TARGETS kiln_openmp_env LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
# Every public header (a glob, so a new per-object header cannot be left out of the install).
file(GLOB KILN_PUBLIC_HEADERS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/include/kiln/*.h
  ${PROJECT_SOURCE_DIR}/include/kiln/*.hpp)
install(FILES ${KILN_PUBLIC_HEADERS} ${PROJECT_BINARY_DIR}/include/kiln/version.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/kiln)

set(KILN_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/kiln)
install(EXPORT kilnTargets NAMESPACE kiln:: DESTINATION ${KILN_CMAKE_DIR})
configure_package_config_file(cmake/kilnConfig.cmake.in ${PROJECT_BINARY_DIR}/kilnConfig.cmake
  INSTALL_DESTINATION ${KILN_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/kilnConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/kilnConfig.cmake ${PROJECT_BINARY_DIR}/kilnConfigVersion.cmake
  DESTINATION ${KILN_CMAKE_DIR})

configure_file(cmake/kiln.pc.in ${PROJECT_BINARY_DIR}/kiln.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/kiln.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# The Python binding, installed as a plain package directory next to the library.
install(DIRECTORY bindings/python/kiln DESTINATION ${CMAKE_INSTALL_LIBDIR}/python3/dist-packages
  PATTERN "__pycache__" EXCLUDE)
