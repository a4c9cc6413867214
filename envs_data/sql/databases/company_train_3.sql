BEGIN TRANSACTION;
CREATE TABLE employees (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  department TEXT NOT NULL,
  city TEXT NOT NULL,
  salary INTEGER NOT NULL,
  hire_year INTEGER NOT NULL
);
INSERT INTO employees VALUES(1,'Umar Walsh','Sales','Nairobi',128500,2005);
INSERT INTO employees VALUES(2,'Sami Abbott','Support','Osaka',60500,2019);
INSERT INTO employees VALUES(3,'Bruno Ibsen','Legal','Lima',148000,2020);
INSERT INTO employees VALUES(4,'Ximena Ueda','Marketing','Oslo',79000,2005);
INSERT INTO employees VALUES(5,'Hiro Nakamura','Engineering','Oslo',84000,2007);
INSERT INTO employees VALUES(6,'Zane Baker','Sales','Lima',69500,2007);
INSERT INTO employees VALUES(7,'Ximena Nakamura','Marketing','Lima',46500,2018);
INSERT INTO employees VALUES(8,'Joel Moreau','Sales','Lisbon',57000,2008);
INSERT INTO employees VALUES(9,'Wen Jovanovic','Engineering','Oslo',55500,2022);
INSERT INTO employees VALUES(10,'Pavel Garza','Marketing','Lisbon',97000,2012);
INSERT INTO employees VALUES(11,'Iris Silva','Legal','Lima',65000,2011);
INSERT INTO employees VALUES(12,'Quinn Garza','Support','Oslo',65000,2007);
INSERT INTO employees VALUES(13,'Rosa Jovanovic','Engineering','Nairobi',119500,2020);
INSERT INTO employees VALUES(14,'Bruno Haddad','Engineering','Lisbon',105500,2016);
INSERT INTO employees VALUES(15,'Joel Abbott','Sales','Nairobi',138000,2014);
INSERT INTO employees VALUES(16,'Luis Kaplan','Legal','Oslo',145500,2011);
INSERT INTO employees VALUES(17,'Vera Okafor','Sales','Nairobi',113000,2019);
INSERT INTO employees VALUES(18,'Joel Quintero','Legal','Lima',108500,2021);
INSERT INTO employees VALUES(19,'Olga Haddad','Marketing','Nairobi',135000,2012);
INSERT INTO employees VALUES(20,'Sami Baker','Finance','Lima',47500,2016);
INSERT INTO employees VALUES(21,'Ximena Okafor','Support','Nairobi',50500,2020);
INSERT INTO employees VALUES(22,'Quinn Ueda','Sales','Oslo',93500,2016);
INSERT INTO employees VALUES(23,'Alma Varga','Finance','Lima',106000,2018);
INSERT INTO employees VALUES(24,'Ximena Petrov','Marketing','Oslo',124500,2005);
INSERT INTO employees VALUES(25,'Zane Zeller','Legal','Osaka',63500,2006);
INSERT INTO employees VALUES(26,'Vera Arendt','Sales','Nairobi',113500,2006);
INSERT INTO employees VALUES(27,'Wen Quintero','Marketing','Nairobi',147500,2020);
INSERT INTO employees VALUES(28,'Dario Walsh','Finance','Nairobi',143000,2020);
INSERT INTO employees VALUES(29,'Boris Silva','Sales','Oslo',140500,2006);
INSERT INTO employees VALUES(30,'Tess Duarte','Marketing','Osaka',143500,2013);
INSERT INTO employees VALUES(31,'Pavel Crane','Marketing','Nairobi',106000,2015);
INSERT INTO employees VALUES(32,'Hiro Garza','Engineering','Denver',49000,2008);
INSERT INTO employees VALUES(33,'Tess Abbott','Legal','Denver',41500,2013);
INSERT INTO employees VALUES(34,'Farid Zeller','Marketing','Osaka',43000,2015);
INSERT INTO employees VALUES(35,'Ximena Jovanovic','Support','Oslo',137500,2017);
INSERT INTO employees VALUES(36,'Fynn Kaplan','Support','Denver',149000,2013);
INSERT INTO employees VALUES(37,'Kira Castro','Marketing','Oslo',102000,2006);
INSERT INTO employees VALUES(38,'Hamza Jovanovic','Sales','Oslo',90500,2007);
INSERT INTO employees VALUES(39,'Farid Ueda','Marketing','Oslo',62500,2019);
INSERT INTO employees VALUES(40,'Rosa Okafor','Engineering','Osaka',110000,2011);
INSERT INTO employees VALUES(41,'Olga Petrov','Support','Nairobi',100000,2019);
INSERT INTO employees VALUES(42,'Luis Eklund','Engineering','Osaka',119500,2009);
INSERT INTO employees VALUES(43,'Ines Castro','Finance','Osaka',101000,2016);
INSERT INTO employees VALUES(44,'Sami Jovanovic','Legal','Nairobi',116500,2021);
INSERT INTO employees VALUES(45,'Wen Garza','Legal','Lisbon',56500,2010);
INSERT INTO employees VALUES(46,'Bruno Castro','Sales','Lima',137500,2015);
INSERT INTO employees VALUES(47,'Ximena Haddad','Finance','Osaka',80500,2021);
INSERT INTO employees VALUES(48,'Iris Tanaka','Finance','Lisbon',105500,2015);
INSERT INTO employees VALUES(49,'Ada Baker','Engineering','Oslo',63500,2010);
INSERT INTO employees VALUES(50,'Kira Okafor','Support','Oslo',138500,2019);
INSERT INTO employees VALUES(51,'Yara Quintero','Sales','Nairobi',124000,2016);
INSERT INTO employees VALUES(52,'Gemma Zeller','Support','Nairobi',58500,2022);
INSERT INTO employees VALUES(53,'Greta Duarte','Legal','Nairobi',81500,2015);
INSERT INTO employees VALUES(54,'Quinn Silva','Engineering','Nairobi',96500,2019);
INSERT INTO employees VALUES(55,'Alma Nakamura','Support','Lisbon',80500,2017);
INSERT INTO employees VALUES(56,'Pavel Walsh','Marketing','Denver',86500,2023);
INSERT INTO employees VALUES(57,'Dev Okafor','Legal','Lima',70500,2017);
INSERT INTO employees VALUES(58,'Ada Lindqvist','Finance','Lisbon',139000,2009);
INSERT INTO employees VALUES(59,'Ximena Rahman','Finance','Osaka',86500,2010);
INSERT INTO employees VALUES(60,'Vera Yilmaz','Engineering','Lima',52000,2008);
COMMIT;
