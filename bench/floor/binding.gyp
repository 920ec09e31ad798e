{
  "targets": [
    {
      "target_name": "floor",
      "sources": ["floor.c"],
      "cflags": ["-Wall", "-Wextra", "-Werror", "-O2"]
    }
  ]
}
