#!/usr/bin/perl
# Prints IPFire's own page frame (header.pl: menu, boxes, footer) around the zonevpn page's boxes: the
# only way for a page not written in Perl to look like, and carry the menu of, every other page.
# STDIN: the page title, then each box's title and HTML, all separated by NUL bytes.
use strict;
use warnings;

my $root = $ENV{'ZONEVPN_ROOT'} // '';
require "$root/var/ipfire/general-functions.pl";
require "${General::swroot}/lang.pl";
require "${General::swroot}/header.pl";

binmode(STDIN, ':raw');
binmode(STDOUT, ':raw');
my $input = do { local $/; <STDIN> };
my ($title, @boxes) = split(/\0/, $input, -1);

&Header::showhttpheaders();
&Header::openpage($title, 1, '');
&Header::openbigbox('100%', 'left', '', '');
while (@boxes >= 2) {
	my ($caption, $html) = (shift @boxes, shift @boxes);
	&Header::openbox('100%', 'left', $caption);
	print $html;
	&Header::closebox();
}
&Header::closebigbox();
&Header::closepage();
