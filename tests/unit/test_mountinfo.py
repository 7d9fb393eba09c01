from sampan.linux.mountinfo import mount_points, unescape


def test_unescape_octal_as_the_kernel_writes_it():
    assert unescape(r"/a\040b\011c\134d") == "/a b\tc\\d"
    assert unescape("/plain") == "/plain"
    assert unescape("\\12") == "\\12"  # not three digits: left alone


def test_mount_points_of_self_include_root():
    assert "/" in mount_points()
