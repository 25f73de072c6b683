# SPDX-License-Identifier: MIT
# Checks a built plugin the way the daemon will see it, run as
#   cmake -DPLUGIN=path/NAME.so -DNM=nm [-DREADELF=readelf -DONLY_LIBC=ON]
#         -P BlazebotCheckPlugin.cmake
# The dynamic symbol table must define blazebot_plugin_v1 as a function and
# nothing else (the linker's own _init/_fini/_edata/_end/__bss_start, which old
# binutils export, are tolerated). With ONLY_LIBC, its NEEDED entries may also
# name only libc, libpthread, libm and the sanitizer runtimes: the promise of
# the first-party plugins, not a rule for third parties, who may link what
# they like. It fails with a message saying which symbol or library is wrong;
# blazebot_add_plugin() runs the export check after every link and the test
# suite runs both checks again.
cmake_minimum_required(VERSION 3.18)

if(NOT PLUGIN OR NOT EXISTS "${PLUGIN}")
  message(FATAL_ERROR "usage: cmake -DPLUGIN=file.so -DNM=nm [-DREADELF=readelf -DONLY_LIBC=ON] "
    "-P ${CMAKE_CURRENT_LIST_FILE}")
endif()
if(NOT NM)
  set(NM nm)
endif()

execute_process(COMMAND "${NM}" -D --defined-only "${PLUGIN}"
  OUTPUT_VARIABLE syms ERROR_VARIABLE err RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${PLUGIN}: ${NM} failed: ${err}")
endif()

set(entry_ok FALSE)
set(extra "")
string(REPLACE "\n" ";" lines "${syms}")
foreach(line IN LISTS lines)
  # "ADDRESS TYPE NAME" (the address is absent for some absolute symbols).
  if(NOT line MATCHES "([A-Za-z]) ([^ ]+)$")
    continue()
  endif()
  set(type "${CMAKE_MATCH_1}")
  set(sym "${CMAKE_MATCH_2}")
  string(REGEX REPLACE "@.*$" "" sym "${sym}")
  if(sym STREQUAL "blazebot_plugin_v1" AND type STREQUAL "T")
    set(entry_ok TRUE)
  elseif(NOT sym MATCHES "^(_init|_fini|_edata|_end|__bss_start)$")
    list(APPEND extra "${type} ${sym}")
  endif()
endforeach()
if(NOT entry_ok)
  message(FATAL_ERROR "${PLUGIN}: does not export blazebot_plugin_v1 as a function "
    "(missing BLAZEBOT_PLUGIN(...)?). Exports:\n${syms}")
endif()
if(extra)
  list(JOIN extra "\n  " extra_text)
  message(FATAL_ERROR "${PLUGIN}: exports more than blazebot_plugin_v1 (make these static, "
    "or build with -fvisibility=hidden):\n  ${extra_text}")
endif()

if(NOT ONLY_LIBC)
  return()
endif()
if(NOT READELF)
  find_program(READELF readelf)
endif()
set(needed "")
if(READELF)
  execute_process(COMMAND "${READELF}" -d "${PLUGIN}"
    OUTPUT_VARIABLE dyn ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${PLUGIN}: ${READELF} failed: ${err}")
  endif()
  string(REGEX MATCHALL "\\(NEEDED\\)[^\n]*\\[[^]\n]+\\]" entries "${dyn}")
  foreach(e IN LISTS entries)
    string(REGEX REPLACE ".*\\[([^]]+)\\]$" "\\1" lib "${e}")
    list(APPEND needed "${lib}")
  endforeach()
else()
  message(FATAL_ERROR "${PLUGIN}: readelf not found, cannot check NEEDED entries")
endif()
foreach(lib IN LISTS needed)
  if(NOT lib MATCHES "^(libc|libpthread|libm|libasan|libubsan|libtsan|liblsan)\\.so(\\.[0-9]+)*$")
    message(FATAL_ERROR "${PLUGIN}: needs ${lib}; a plugin may link only libc, "
      "libpthread and libm (everything else comes through the host table)")
  endif()
endforeach()
