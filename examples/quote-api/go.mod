module example.com/quote-api

go 1.22
