# SPDX-License-Identifier: MIT
# blazebot_add_plugin(): builds one blazebot plugin the way the daemon expects
# it. This file serves both the blazebot source tree and out-of-tree plugins
# (it is installed next to blazebotConfig.cmake), so it depends on nothing but
# the SDK headers, found through the target blazebot::sdk. A plugin is a MODULE
# named NAME.so, compiled as C99 (-std=c99, like examples/hello-plugin/Makefile;
# -std=gnu99 only if the project sets CMAKE_C_EXTENSIONS ON) with hidden
# visibility, linked with -z defs (it needs nothing from the daemon) and a
# version script that keeps every symbol but the entry point local; after each link
# BlazebotCheckPlugin.cmake confirms that blazebot_plugin_v1 is its only
# export (a plugin that forgot BLAZEBOT_PLUGIN fails here, not at load time).
#
#   blazebot_add_plugin(NAME [NO_INSTALL] [INSTALL_DIR dir] sources...)
#
# Plugins install to BLAZEBOT_PLUGIN_INSTALL_DIR (default
# ${CMAKE_INSTALL_LIBDIR}/blazebot/plugins) unless NO_INSTALL is given.
# -Werror is added when BLAZEBOT_WERROR is true.
include_guard(GLOBAL)
if(CMAKE_VERSION VERSION_LESS 3.18)
  message(FATAL_ERROR "blazebot_add_plugin() needs CMake 3.18 or later")
endif()
include(GNUInstallDirs)

set(_BLAZEBOT_CMAKE_DIR "${CMAKE_CURRENT_LIST_DIR}")

# blazebot::sdk: the include folder holding blazebot/plugin.h. The installed
# blazebotConfig.cmake defines it before including this file; otherwise look
# for the headers in the source tree (cmake/../sdk-headers) or in an install
# tree (lib/cmake/blazebot or lib/<multiarch>/cmake/blazebot, ../include).
if(NOT TARGET blazebot::sdk)
  set(_blazebot_sdk_dir "")
  foreach(_candidate "${_BLAZEBOT_CMAKE_DIR}/../sdk-headers"
          "${_BLAZEBOT_CMAKE_DIR}/../../../include" "${_BLAZEBOT_CMAKE_DIR}/../../../../include")
    if(NOT _blazebot_sdk_dir AND EXISTS "${_candidate}/blazebot/plugin.h")
      get_filename_component(_blazebot_sdk_dir "${_candidate}" ABSOLUTE)
    endif()
  endforeach()
  if(NOT _blazebot_sdk_dir)
    message(FATAL_ERROR "BlazebotPlugin.cmake: cannot find blazebot/plugin.h near ${_BLAZEBOT_CMAKE_DIR}")
  endif()
  add_library(blazebot_sdk INTERFACE)
  target_include_directories(blazebot_sdk INTERFACE "$<BUILD_INTERFACE:${_blazebot_sdk_dir}>")
  add_library(blazebot::sdk ALIAS blazebot_sdk)
  unset(_blazebot_sdk_dir)
  unset(_candidate)
endif()

set(BLAZEBOT_PLUGIN_INSTALL_DIR "${CMAKE_INSTALL_LIBDIR}/blazebot/plugins"
  CACHE STRING "Where blazebot_add_plugin() installs plugins")

# The check run after every link, by tests and by out-of-tree projects alike.
set(BLAZEBOT_CHECK_PLUGIN_SCRIPT "${_BLAZEBOT_CMAKE_DIR}/BlazebotCheckPlugin.cmake")

function(blazebot_add_plugin name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "NO_INSTALL" "INSTALL_DIR" "")
  if(NOT arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "blazebot_add_plugin(${name}): no source files")
  endif()
  add_library(${name} MODULE ${arg_UNPARSED_ARGUMENTS})
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    C_STANDARD 99
    C_STANDARD_REQUIRED ON
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    POSITION_INDEPENDENT_CODE ON)
  # Plain C99, not CMake's default gnu99: the same -std as the pkg-config
  # Makefile, unless the project chose otherwise.
  if(NOT DEFINED CMAKE_C_EXTENSIONS)
    set_target_properties(${name} PROPERTIES C_EXTENSIONS OFF)
  endif()
  target_link_libraries(${name} PRIVATE blazebot::sdk)
  target_compile_options(${name} PRIVATE
    "$<$<C_COMPILER_ID:GNU,Clang>:-Wall;-Wextra;-Wshadow;-Wstrict-prototypes;-Wmissing-prototypes;-Wformat=2;-Wno-unused-parameter>")
  if(BLAZEBOT_WERROR)
    target_compile_options(${name} PRIVATE -Werror)
  endif()

  # The version script makes every symbol but the entry point local even if
  # a bundled static library was built with default visibility; otherwise
  # its symbols could interpose with the daemon's libraries at load time.
  set(map "${CMAKE_BINARY_DIR}/CMakeFiles/blazebot_plugin.map")
  if(NOT EXISTS "${map}")
    file(WRITE "${map}" "{\n  global: blazebot_plugin_v1;\n  local: *;\n};\n")
  endif()
  target_link_options(${name} PRIVATE "LINKER:--version-script=${map}")
  # Clang does not link the sanitizer runtimes into shared objects, so with
  # sanitizers a Clang-built plugin has undefined __asan_* symbols by design.
  if(NOT ((BLAZEBOT_SANITIZE OR BLAZEBOT_TSAN) AND CMAKE_C_COMPILER_ID MATCHES "Clang"))
    target_link_options(${name} PRIVATE "LINKER:-z,defs")
  endif()
  set_property(TARGET ${name} APPEND PROPERTY LINK_DEPENDS "${map}")

  if(CMAKE_NM)
    add_custom_command(TARGET ${name} POST_BUILD
      COMMAND ${CMAKE_COMMAND} -DPLUGIN=$<TARGET_FILE:${name}> -DNM=${CMAKE_NM}
        -DREADELF=${CMAKE_READELF} -P "${BLAZEBOT_CHECK_PLUGIN_SCRIPT}"
      COMMENT "Checking the exports of ${name}.so"
      VERBATIM)
  endif()

  if(NOT arg_NO_INSTALL)
    set(dest "${BLAZEBOT_PLUGIN_INSTALL_DIR}")
    if(arg_INSTALL_DIR)
      set(dest "${arg_INSTALL_DIR}")
    endif()
    install(TARGETS ${name} LIBRARY DESTINATION "${dest}")
  endif()
endfunction()
