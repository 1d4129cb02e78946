#!/usr/bin/perl
# IPFire's own page frame (header.pl: menu, title, footer) for zonevpn's page, which is Python: the only way
# for a page not written in Perl to carry the real menu and look like every other page. Installed outside
# cgi-bin (which Apache serves as CGI) and run by zonevpn.cgi. It reads no input at all: the title is the
# add-on's own language string, and the page's body is printed by the Python side in place of the marker
# line, so nothing a request carries can reach Perl or change the frame's structure.
use strict;

require "/var/ipfire/general-functions.pl";
require "${General::swroot}/lang.pl";
require "${General::swroot}/header.pl";

my $title = $Lang::tr{'zonevpn title'} // 'zonevpn';
$title =~ s/([<>&"'])/sprintf('&#%d;', ord($1))/ge;

&Header::showhttpheaders();
&Header::openpage($title, 1, '');
&Header::openbigbox('100%', 'left', '', '');
print "\n<!-- zonevpn body -->\n";
&Header::closebigbox();
&Header::closepage();
