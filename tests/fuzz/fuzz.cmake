# SPDX-License-Identifier: MIT
# Fuzz targets (tests/fuzz/fuzz_NAME.c, each defining LLVMFuzzerTestOneInput),
# included from tests/CMakeLists.txt. By default, with any compiler and with
# or without BLAZEBOT_SANITIZE, each target is linked with driver.c, which
# runs it once on every file of tests/fuzz/corpus/NAME, and registered as the
# ctest fuzz.NAME: the regression run of the corpus, crashes found earlier
# included. With clang and -DBLAZEBOT_FUZZ=ON the same targets are libFuzzer
# binaries (-fsanitize=fuzzer,address,undefined, no driver) for
# scripts/fuzz.sh; the code they test then comes from blazebot_core_fuzz, a
# copy of blazebot_core built with the coverage instrumentation, and fuzz.NAME
# runs the corpus once (-runs=0).
option(BLAZEBOT_FUZZ "Build the fuzz targets as libFuzzer binaries (clang only)" OFF)

set(BLAZEBOT_FUZZ_DIR ${CMAKE_CURRENT_LIST_DIR})

if(BLAZEBOT_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "BLAZEBOT_FUZZ needs clang's libFuzzer: configure with CC=clang")
  endif()
  set(BLAZEBOT_FUZZ_FLAGS -fsanitize=fuzzer-no-link,address,undefined
    -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  # blazebot_core again, same sources and settings, instrumented.
  get_target_property(_fuzz_core_dir blazebot_core SOURCE_DIR)
  get_target_property(_fuzz_core_srcs blazebot_core SOURCES)
  set(_fuzz_srcs "")
  foreach(_src IN LISTS _fuzz_core_srcs)
    if(IS_ABSOLUTE "${_src}")
      list(APPEND _fuzz_srcs "${_src}")
    else()
      list(APPEND _fuzz_srcs "${_fuzz_core_dir}/${_src}")
    endif()
  endforeach()
  add_library(blazebot_core_fuzz STATIC ${_fuzz_srcs})
  foreach(_prop INCLUDE_DIRECTORIES COMPILE_DEFINITIONS COMPILE_OPTIONS LINK_LIBRARIES
      INTERFACE_INCLUDE_DIRECTORIES INTERFACE_COMPILE_DEFINITIONS
      INTERFACE_LINK_LIBRARIES)
    get_target_property(_val blazebot_core ${_prop})
    if(_val)
      set_property(TARGET blazebot_core_fuzz PROPERTY ${_prop} "${_val}")
    endif()
  endforeach()
  target_compile_options(blazebot_core_fuzz PRIVATE ${BLAZEBOT_FUZZ_FLAGS})
endif()

# blazebot_fuzz_target(NAME [SOURCES...]) -> fuzz_NAME and the test fuzz.NAME
function(blazebot_fuzz_target name)
  set(exe fuzz_${name})
  set(corpus ${BLAZEBOT_FUZZ_DIR}/corpus/${name})
  add_executable(${exe} ${BLAZEBOT_FUZZ_DIR}/fuzz_${name}.c ${ARGN})
  target_include_directories(${exe} PRIVATE ${BLAZEBOT_FUZZ_DIR})
  blazebot_warnings(${exe})
  if(BLAZEBOT_FUZZ)
    target_link_libraries(${exe} PRIVATE blazebot_core_fuzz)
    target_compile_options(${exe} PRIVATE ${BLAZEBOT_FUZZ_FLAGS})
    target_link_options(${exe} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_compile_definitions(${exe} PRIVATE BLAZEBOT_LIBFUZZER=1)
    add_test(NAME fuzz.${name} COMMAND ${exe} -runs=0 ${corpus})
  else()
    target_sources(${exe} PRIVATE ${BLAZEBOT_FUZZ_DIR}/driver.c)
    target_link_libraries(${exe} PRIVATE blazebot_core)
    add_test(NAME fuzz.${name} COMMAND ${exe} ${corpus})
  endif()
  set_tests_properties(fuzz.${name} PROPERTIES TIMEOUT 60 LABELS fuzz)
endfunction()

blazebot_fuzz_target(frame)
blazebot_fuzz_target(answer)
blazebot_fuzz_target(ini)
blazebot_fuzz_target(keystore)
blazebot_fuzz_target(base64_jwt)
# The simulator's sources, without its main().
file(GLOB _fuzz_sim_srcs CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/sim/*.c)
list(FILTER _fuzz_sim_srcs EXCLUDE REGEX "/main\\.c$")
blazebot_fuzz_target(sim_request ${_fuzz_sim_srcs})
target_include_directories(fuzz_sim_request PRIVATE ${PROJECT_SOURCE_DIR}/tests/sim)
