# Writes build_info.cc with the git commit of the source tree. Run at every
# build (the relay_build_info_stamp target), not only at configure time, so a
# new commit shows in --version without a reconfigure; configure_file rewrites
# OUT only when its text changes, so an unchanged commit rebuilds nothing.
#   cmake -DSOURCE_DIR=... -DIN=build_info.cc.in -DOUT=.../build_info.cc
#         -DRELAY_BUILD_VERSION=1.0.0 -P build_info.cmake
set(RELAY_BUILD_COMMIT "unknown")
find_package(Git QUIET)
if(GIT_FOUND)
  # Outside a checkout (a source tarball) this fails, or names another
  # repository the tarball was unpacked into: the commit stays "unknown".
  execute_process(
    COMMAND "${GIT_EXECUTABLE}" -C "${SOURCE_DIR}" rev-parse --show-toplevel
    OUTPUT_VARIABLE toplevel
    RESULT_VARIABLE toplevel_result
    OUTPUT_STRIP_TRAILING_WHITESPACE
    ERROR_QUIET)
  get_filename_component(toplevel "${toplevel}" REALPATH)
  get_filename_component(source_real "${SOURCE_DIR}" REALPATH)
endif()
if(GIT_FOUND AND toplevel_result EQUAL 0 AND toplevel STREQUAL source_real)
  execute_process(
    COMMAND "${GIT_EXECUTABLE}" -C "${SOURCE_DIR}" describe --always --dirty --abbrev=12
    OUTPUT_VARIABLE described
    RESULT_VARIABLE described_result
    OUTPUT_STRIP_TRAILING_WHITESPACE
    ERROR_QUIET)
  # Only what a C string literal can hold as it is.
  if(described_result EQUAL 0 AND described MATCHES "^[A-Za-z0-9._+-]+$")
    set(RELAY_BUILD_COMMIT "${described}")
  endif()
endif()
configure_file("${IN}" "${OUT}" @ONLY)
